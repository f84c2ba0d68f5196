"""Placeholder: commands of this subject are registered here."""

from __future__ import annotations

import click

COMMANDS: list[click.Command] = []
