"""The one door to the data: every reader and writer goes through this package."""
