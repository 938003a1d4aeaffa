"""Validator service: predictions → per-series state (changelog-backed table) → best-models."""
