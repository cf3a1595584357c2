"""Datasets declared on this platform: one package each, a `DATASET` declaration and its transforms."""
