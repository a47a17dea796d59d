"""Dagster orchestration: thin assets over the stage functions, the jobs, schedules and sensors (definitions.py assembles them)."""
