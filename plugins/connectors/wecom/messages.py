"""The app message types WeCom's message/send accepts, checked against its published limits.

Limits are checked here, before sending, because WeCom truncates or refuses over-long
fields with codes that do not say which field was at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


def _check_bytes(name: str, value: str, limit: int) -> None:
    size = len(value.encode())
    if size > limit:
        raise ValueError(f"{name} is {size} bytes; WeCom accepts at most {limit}")


@dataclass(frozen=True)
class Recipients:
    """Who receives a message: users, departments (parties) and tags, or everyone."""

    users: tuple[str, ...] = ()
    parties: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    everyone: bool = False

    def __post_init__(self) -> None:
        if not (self.users or self.parties or self.tags or self.everyone):
            raise ValueError("a message needs at least one recipient")
        for name, values, limit in (
            ("users", self.users, 1000),
            ("parties", self.parties, 100),
            ("tags", self.tags, 100),
        ):
            if len(values) > limit:
                raise ValueError(f"WeCom accepts at most {limit} {name} per message")
            if any(not v or "|" in v for v in values):
                raise ValueError(f"{name} must be non-empty ids without '|'")

    def fields(self) -> dict[str, str]:
        if self.everyone:
            return {"touser": "@all"}
        out = {}
        for key, values in (
            ("touser", self.users),
            ("toparty", self.parties),
            ("totag", self.tags),
        ):
            if values:
                out[key] = "|".join(values)
        return out


@dataclass(frozen=True)
class Text:
    content: str
    msgtype = "text"

    def __post_init__(self) -> None:
        _check_bytes("text content", self.content, 2048)

    def body(self) -> dict[str, Any]:
        return {"content": self.content}


@dataclass(frozen=True)
class TextCard:
    title: str
    description: str
    url: str
    btntxt: str = "详情"
    msgtype = "textcard"

    def __post_init__(self) -> None:
        _check_bytes("textcard title", self.title, 128)
        _check_bytes("textcard description", self.description, 512)
        _check_bytes("textcard url", self.url, 2048)
        _check_bytes("textcard btntxt", self.btntxt, 4 * 3)

    def body(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "description": self.description,
            "url": self.url,
            "btntxt": self.btntxt,
        }


@dataclass(frozen=True)
class Markdown:
    content: str
    msgtype = "markdown"

    def __post_init__(self) -> None:
        _check_bytes("markdown content", self.content, 2048)

    def body(self) -> dict[str, Any]:
        return {"content": self.content}


@dataclass(frozen=True)
class TemplateCard:
    """A template card, passed as WeCom defines it (``card_type`` and its fields)."""

    card: Mapping[str, Any]
    msgtype = "template_card"

    def __post_init__(self) -> None:
        if "card_type" not in self.card:
            raise ValueError("a template card needs its card_type")

    def body(self) -> dict[str, Any]:
        return dict(self.card)


Message = Text | TextCard | Markdown | TemplateCard


@dataclass(frozen=True)
class SendOptions:
    """``duplicate_check_seconds`` turns on WeCom's duplicate check, which makes a retried
    send safe: WeCom drops a repeat of the same content within that window."""

    safe: bool = False
    duplicate_check_seconds: int | None = None

    def fields(self) -> dict[str, int]:
        out = {"safe": int(self.safe)}
        if self.duplicate_check_seconds is not None:
            if not 0 < self.duplicate_check_seconds <= 4 * 3600:
                raise ValueError("WeCom's duplicate check interval is 1 s to 4 h")
            out["enable_duplicate_check"] = 1
            out["duplicate_check_interval"] = self.duplicate_check_seconds
        return out


@dataclass(frozen=True)
class SendResult:
    """What message/send reported. Invalid recipients do not fail the send (WeCom delivers
    to the others), so they are listed here for the log."""

    msgid: str | None
    invalid_users: tuple[str, ...] = ()
    invalid_parties: tuple[str, ...] = ()
    invalid_tags: tuple[str, ...] = ()
    unlicensed_users: tuple[str, ...] = ()
    response_code: str | None = None

    def shortfall(self) -> str | None:
        """A one-line summary of the recipients not reached, or ``None`` if all were."""
        parts = [
            f"{len(values)} {name}"
            for name, values in (
                ("invalid users", self.invalid_users),
                ("invalid parties", self.invalid_parties),
                ("invalid tags", self.invalid_tags),
                ("unlicensed users", self.unlicensed_users),
            )
            if values
        ]
        return ", ".join(parts) or None
