"""The cycle collector's setting in ``qiao`` processes, checked in interpreters of their own."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qiao.core.collector import YOUNG_GENERATION_THRESHOLD

CONSOLE = """
import gc, sys
from qiao.cli.main import main
{before}
try:
    main(["--help"])
except SystemExit:
    pass
print(gc.get_threshold(), file=sys.stderr)
"""


def thresholds_after_the_console(before: str = "") -> str:
    done = subprocess.run(
        [sys.executable, "-c", CONSOLE.format(before=before)],
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stderr.strip().splitlines()[-1]


def test_the_console_collects_the_young_generation_less_often() -> None:
    assert thresholds_after_the_console() == f"({YOUNG_GENERATION_THRESHOLD}, 10, 10)"


@pytest.mark.parametrize(
    ("setting", "kept"),
    [("gc.set_threshold(50000, 5, 5)", "(50000, 5, 5)"), ("gc.set_threshold(0)", "(0, 10, 10)")],
)
def test_an_interpreter_set_to_collect_less_often_keeps_its_setting(
    setting: str, kept: str
) -> None:
    assert thresholds_after_the_console(setting) == kept
