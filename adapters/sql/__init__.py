"""SQL adapters: one set of repositories over a small dialect layer (MySQL, SQLite)."""
