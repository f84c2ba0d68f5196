"""Qiao command line."""
