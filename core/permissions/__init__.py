"""Roles, record rules and field rules, compiled into SQL.

See docs/permissions.md. :mod:`.rights` is the data format of a role's rights,
:mod:`.subject` what Qiao knows about a caller (team, reports, region, roles),
:mod:`.access` turns both into WHERE clauses and field checks, and
:mod:`.engine` caches the result per caller.
"""
