"""Metadata is data: entities and fields declared by manifests and by admins.

Everything else in Qiao (tables, GraphQL types, validation) is derived from the
immutable :class:`~qiao.core.metadata.registry.Registry` snapshot built here.
"""

from qiao.core.metadata.model import EntityDef, FieldDef, FieldType, Label, OnDelete
from qiao.core.metadata.registry import Registry

__all__ = ["EntityDef", "FieldDef", "FieldType", "Label", "OnDelete", "Registry"]
