"""Customisation: admins' run-time changes to the metadata, applied live.

:mod:`~qiao.core.customisation.changes` is the service (one checked transaction
per change); :mod:`~qiao.core.customisation.mutations` offers it over GraphQL
and ``qiao metadata`` on the command line (docs/metadata-changes.md).
"""
