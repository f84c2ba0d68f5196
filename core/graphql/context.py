"""What a resolver knows about its request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from qiao.core.records.context import Actor

if TYPE_CHECKING:
    from qiao.core.graphql.builder import BuiltSchema
    from qiao.core.permissions.access import Access
    from qiao.core.runtime import Runtime


@dataclass(frozen=True)
class RequestContext:
    """Passed to strawberry as ``context``; resolvers reach Qiao through it."""

    runtime: Runtime
    actor: Actor
    built: BuiltSchema
    request_id: str
    access: Access
