"""Blue-green releases: plan, build, diff, release suite, promotion, release log, report."""
