"""E-mail: sending over SMTP with attachments, fetching new mail over IMAP by UID.

See docs/connectors/email.md for the protocol facts this follows and its limits.
"""
