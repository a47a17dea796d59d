"""Ingestion: landing-zone drops (CSV, Excel, Parquet, bank statements) into typed raw history and quarantine."""
