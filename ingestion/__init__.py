"""Ingestion service: configs → validated config + downloaded data → one Dataset per unit of work."""
