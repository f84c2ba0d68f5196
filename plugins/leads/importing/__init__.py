"""Importing spreadsheets (.xlsx, .csv) into any entity, leads first: read, map, clean, write."""
