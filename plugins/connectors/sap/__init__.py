"""SAP S/4HANA OData services, v2 and v4: paging, dates, CSRF tokens, ETags.

See docs/connectors/sap.md for the protocol facts this follows and its limits.
"""
