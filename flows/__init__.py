"""Thin Prefect flows: load blocks, call the core, publish signals, return states."""
