"""The database: one door (database.py), its schema and its named queries."""
