"""Offline sync for mobile clients: pull changes since a cursor, push offline edits.

See docs/sync.md.
"""
