"""Operating lakeops on Prefect: local server and worker lifecycle, setup, the demo story."""
