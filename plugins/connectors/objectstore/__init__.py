"""Attachments in an S3-compatible store or on local disk, optionally encrypted, with
download links that expire.

See docs/connectors/objectstore.md for the protocol facts this follows and its limits.
"""
