"""Yonyou YonSuite / BIP (用友) open API: gateway discovery, signed token, list endpoints.

See docs/connectors/yonyou.md for the protocol facts this follows and its limits.
"""
