"""Checkpoints kept outside the database: an append-only file of JSON lines.

Whoever can write the database can erase the audit log, rewind its head and
delete the checkpoints stored beside it; a chain that starts over then verifies
against itself. A checkpoint file on the deployment's disk (or a copy shipped
elsewhere) remembers how far the chain had reached and with which key: a log
that no longer reaches that far, or no longer holds that key, does not verify.

Each line is one exported checkpoint (:meth:`Checkpoint.export`), written with
a single ``write`` in append mode, so several processes of one deployment may
append to the same file. The file is created with mode 0600; it holds no
secret, but nobody else has reason to touch it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from qiao.core.audit.chain import Checkpoint
from qiao.core.errors import ConfigurationError

MODE = 0o600


class CheckpointFile:
    """The deployment's external checkpoints, newest last."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, checkpoint: Checkpoint) -> None:
        line = (json.dumps(checkpoint.export(), sort_keys=True) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, MODE)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint in the file; a damaged line is an error naming it."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return []
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(
                f"cannot read the checkpoint file {self.path}: {exc}"
            ) from None
        found = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                found.append(Checkpoint.from_export(json.loads(line)))
            except ValueError as exc:
                raise ConfigurationError(
                    f"line {number} of the checkpoint file {self.path} is damaged: {exc}"
                ) from None
        return found

    def latest(self) -> Checkpoint | None:
        """The checkpoint that vouches for the most entries (processes may append out of order)."""
        return max(self.checkpoints(), key=lambda c: c.sequence, default=None)
