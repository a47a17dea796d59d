"""Transformation: the dbt project (staging, intermediate, marts) run at the run's as-of."""
