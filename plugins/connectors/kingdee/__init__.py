"""Kingdee K/3 Cloud (金蝶云星空) Web API: session login, bill queries, saves.

See docs/connectors/kingdee.md for the protocol facts this follows and its limits.
"""
