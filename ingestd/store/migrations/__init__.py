"""Alembic migrations of the ingestd database (run via ingestd.store.migrate)."""
