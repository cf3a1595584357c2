"""Platform metrics: reliability against its objective, velocity (DORA keys), cost per pipeline-hour."""
