"""Extraction, the stage before ingest: pull sources where they live (SQL tables, SFTP deliveries, HTTP APIs) into ordinary landing drops."""
