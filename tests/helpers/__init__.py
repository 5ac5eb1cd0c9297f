"""Shared test helpers (fixture builders) reused across ecglit's test files."""
