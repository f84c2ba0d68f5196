"""What an install, upgrade or migration did (or, in a dry run, would do), line by line."""

from __future__ import annotations

from dataclasses import dataclass, field

_DONE = {
    "create": "created",
    "change": "changed",
    "drop": "dropped",
    "keep": "kept",
    "migrate": "migrated",
}


@dataclass
class Plan:
    """Created, changed, dropped, kept and migrated items, in the order they were met.

    A dry run does the work in a transaction it rolls back, so its plan is the
    one a real run follows; only the tense of the lines differs.
    """

    lines: list[tuple[str, str]] = field(default_factory=list)

    def created(self, what: str, by: str | None = None) -> None:
        self.lines.append(("create", what + (f" (from {by})" if by else "")))

    def changed(self, what: str, by: str | None = None) -> None:
        self.lines.append(("change", what + (f" (from {by})" if by else "")))

    def dropped(self, what: str, by: str | None = None) -> None:
        self.lines.append(("drop", what + (f" (no longer in {by})" if by else "")))

    def kept(self, what: str, why: str) -> None:
        self.lines.append(("keep", f"{what}: {why}"))

    def migrated(self, what: str) -> None:
        self.lines.append(("migrate", what))

    @property
    def empty(self) -> bool:
        return not self.lines

    def count(self, verb: str) -> int:
        return sum(1 for v, _ in self.lines if v == verb)

    def render(self, *, done: bool = True) -> list[str]:
        """One line per item: ``created table dealer`` (``would create ...`` when not done)."""
        if done:
            return [f"{_DONE[verb]} {what}" for verb, what in self.lines]
        return [f"would {verb} {what}" for verb, what in self.lines]
