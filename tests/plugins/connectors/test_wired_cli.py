"""``qiao connector``: add with a secret asked without echo, set a secret, sync, status."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner

from qiao.cli import main as cli_main
from qiao.core.testing.worker import drain

from .deployment import connector_command, kingdee_added
from .fakes import kingdee as kingdee_fake
from .fakes.kingdee import FakeKingdee


@pytest.fixture
def kingdee() -> Iterator[FakeKingdee]:
    """On the wall clock: the command runs in a runtime of its own, on the real time."""
    with FakeKingdee(time.time).serve() as fake:
        yield fake


def test_add_sync_and_status(
    qiao_runtime: Any, qiao_config: Any, qiao_worker: Any, kingdee: FakeKingdee
) -> None:
    kingdee.add_customers(2)
    run = connector_command(qiao_config.path)
    args, answer = kingdee_added("erp", kingdee.url)
    added = run(*args, input=answer)
    assert kingdee_fake.PASSWORD not in added
    run("set-secret", "erp", "callback_token", input="tok\n")
    assert "sync of erp requested" in run("sync", "erp")
    drain(qiao_worker)
    status = run("status", "erp")
    assert status.startswith("erp (kingdee) active  secrets: app_secret, callback_token")
    assert "errors/h: 0" in status and "last success: -" not in status
    refused = CliRunner().invoke(
        cli_main.cli, ["--config", str(qiao_config.path), "connector", "add", "wecom", "wx"]
    )
    assert refused.exit_code == 1
    assert "needs the settings corp_id, agent_id" in refused.output
