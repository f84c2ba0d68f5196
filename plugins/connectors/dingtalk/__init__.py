"""DingTalk (钉钉) internal apps: tokens, work notices, approvals, HTTP callbacks.

See docs/connectors/dingtalk.md for the protocol facts this follows and its limits.
"""
