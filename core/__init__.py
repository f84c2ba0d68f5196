"""Qiao's kernel: metadata, storage, records, plugins and the GraphQL API."""

__version__ = "0.1.0"
