"""Alerts, the health board and notifications, evaluated at the run's as-of from the marts."""
