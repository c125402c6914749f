"""The worker's own database: tables, a small API and migrations."""
