"""Authentication: API tokens (hashed at rest) that resolve to an actor."""
