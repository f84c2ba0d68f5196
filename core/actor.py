"""Who is acting: the one type every layer that judges a caller needs.

It sits at the bottom of the core, below permissions and the records service,
so the rules that decide what a caller may see and the write context that
carries the caller name the same type without importing each other.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    """The authenticated caller. ``user_id`` is None for the system itself."""

    user_id: str | None
    username: str
    is_admin: bool = False
    #: Authenticated with a read-only token: queries only.
    read_only: bool = False

    @classmethod
    def system(cls) -> Actor:
        return cls(user_id=None, username="system", is_admin=True)
