"""Storage: engines, column types, and tables derived from metadata."""
