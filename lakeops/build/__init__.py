"""Builds: the layer steps, their validation suites, the stale carry-forward."""
