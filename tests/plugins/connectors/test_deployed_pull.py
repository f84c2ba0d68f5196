"""An ERP pull on a deployment ``qiao init`` made, through ``qiao connector`` and
``qiao worker`` processes, as its operator runs it: the page written as a batch, a
refused row listed, a pull again writing only what changed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from qiao.core.storage import system
from qiao.core.testing.deployment import Deployment, init
from tests.cli.test_keys import runtime_of

from .deployment import kingdee_added
from .fakes.kingdee import FakeKingdee


@pytest.fixture
def kingdee() -> Iterator[FakeKingdee]:
    """On the wall clock: the commands run in processes of their own, on the real time."""
    with FakeKingdee(time.time).serve() as fake:
        yield fake


def accounts(site: Deployment) -> tuple[dict[str, str], int]:
    """(ERP code -> name of every account, audit entries of accounts)."""
    with runtime_of(site.config) as runtime, runtime.db.read() as conn:
        table = runtime.current().table("account")
        names = dict(conn.execute(select(table.c.erp_code, table.c.name)).all())
        entries = system.audit_entry
        audited = conn.execute(
            select(func.count()).where(entries.c.entity == "account")
        ).scalar_one()
    return names, audited


def pull(site: Deployment) -> None:
    assert "sync of erp requested" in site.run("connector", "sync", "erp").stdout
    site.run("worker", "--once")


def test_a_pull_through_the_worker_writes_the_page_and_lists_what_it_refused(
    qiao_empty_database_url: str, tmp_path: Path, kingdee: FakeKingdee
) -> None:
    plugins = ("--plugin", "crm", "--plugin", "connectors")
    site = init(tmp_path / "deployment", qiao_empty_database_url, *plugins)
    kingdee.add_customers(40)
    customers = kingdee.forms["BD_Customer"]
    customers[7]["FName"] = ""  # an account needs a name
    args, answer = kingdee_added("erp", kingdee.url)
    site.run("connector", *args, input=answer)

    pull(site)

    names, audited = accounts(site)
    assert len(names) == 39 and "CUST0007" not in names
    assert names["CUST0012"] == "客户12"
    assert audited == 39
    status = site.run("connector", "status", "erp").stdout
    assert "last success: -" not in status and "errors/h: 1" in status
    assert "last error: upsert account: Refused erp_code=CUST0007: name is required" in status

    customers[7].update(FName="客户7", FModifyDate="2026-01-30T08:30:00")
    customers[12].update(FName="客户12（更名）", FModifyDate="2026-01-30T09:00:00")
    pull(site)

    names, audited = accounts(site)
    assert len(names) == 40
    assert (names["CUST0007"], names["CUST0012"]) == ("客户7", "客户12（更名）")
    assert audited == 39 + 2, "a pull again writes the new row and the renamed one only"
