"""Migration scripts, one per kernel schema version."""
