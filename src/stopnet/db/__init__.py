"""Database layer: engine and sessions, the typed models, Alembic migrations."""
