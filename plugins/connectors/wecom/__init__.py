"""WeCom (企业微信) self-built apps: tokens, app messages, external contacts, callbacks.

See docs/connectors/wecom.md for the protocol facts this follows and its limits.
"""
