"""Datasets: the declaration every capability reads, its registry, windows, and the names of events and tables."""
