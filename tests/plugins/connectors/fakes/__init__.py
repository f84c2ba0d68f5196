"""Local servers that speak each vendor's published protocol, for the connectors' tests.

They are written from the vendors' documentation, independently of the connector code
(the callback cipher here uses another padding implementation on purpose), so a test
passing means the connector and the protocol agree, not the connector with itself.
"""
