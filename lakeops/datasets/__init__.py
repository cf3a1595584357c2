"""Datasets: windows and the names of events, resource ids and tables."""
