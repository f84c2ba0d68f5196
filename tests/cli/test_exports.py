"""``qiao export`` on a deployment ``qiao init`` made, as its operator runs it (docs/exports.md)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from openpyxl import load_workbook
from sqlalchemy import select

from qiao.core.records.context import Actor, Source
from qiao.core.storage import system
from qiao.core.testing.deployment import Deployment

from .conftest import Run
from .test_keys import runtime_of

SYSTEM = Actor.system()


def _seed(site: Deployment) -> None:
    """Two reps of one team with an opportunity each, a service engineer, a contact."""
    with runtime_of(site.config) as runtime, runtime.records.transaction(SYSTEM, Source.CLI) as ctx:
        records = runtime.records
        roles = {
            r["name"]: r["id"] for r in records.list(ctx.connection, "role", actor=SYSTEM).records
        }
        team = records.create(ctx, "team", {"name": "苏州组", "code": "suzhou", "kind": "TEAM"})
        users = {}
        for name, display, role in (
            ("zhang", "张三", "sales_rep"),
            ("li", "李四", "sales_rep"),
            ("sun", "孙工", "service_engineer"),
        ):
            user = records.create(
                ctx, "user", {"username": name, "display_name": display, "team": team["id"]}
            )
            records.create(ctx, "role_assignment", {"user": user["id"], "role": roles[role]})
            users[name] = user["id"]
        account = records.create(ctx, "account", {"name": "无锡重工", "owner": users["zhang"]})
        for rep in ("zhang", "li"):
            records.create(
                ctx,
                "opportunity",
                {
                    "name": f"{rep} 的数控车床",
                    "account": account["id"],
                    "owner": users[rep],
                    "stage": "PROPOSAL",
                    "amount": "450000.00",
                },
            )
        records.create(
            ctx,
            "contact",
            {
                "name": "王芳",
                "account": account["id"],
                "mobile": "13800138000",
            },
        )


def test_qiao_export_writes_what_the_user_may_export_and_nothing_when_refused(
    qiao_deployment: Deployment, tmp_path: Path
) -> None:
    site = qiao_deployment
    _seed(site)
    mine = tmp_path / "商机.csv"
    done = site.run("export", "opportunity", "--as", "zhang", "-o", str(mine), "--bom")
    assert f"Exported 1 opportunity record to {mine} (csv)." in done.stdout
    assert mine.read_bytes().startswith(b"\xef\xbb\xbf") and mine.stat().st_mode & 0o077 == 0
    rows = list(csv.DictReader(io.StringIO(mine.read_text(encoding="utf-8-sig"))))
    assert [r["名称"] for r in rows] == ["zhang 的数控车床"]

    book = tmp_path / "contacts.xlsx"
    site.run("export", "contact", "--as", "admin", "-o", str(book), "--names", "api")
    sheet = load_workbook(io.BytesIO(book.read_bytes()), read_only=True).active
    header, *body = [list(r) for r in sheet.iter_rows(values_only=True)]
    contact = dict(zip(header, body[0], strict=True))
    assert contact["name"] == "王芳" and contact["mobile"] == "+8613800138000"  # opened

    rejected = tmp_path / "accounts.csv"
    bad = site.run(
        "export",
        "opportunity",
        "--as",
        "zhang",
        "-o",
        str(rejected),
        "--filter",
        '{"stage": {"eq": "WON"}}',
        expect=1,
    )
    assert "filter.stage.eq" in bad.stderr and "Traceback" not in bad.stderr
    assert not rejected.exists() and sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["商机.csv", "contacts.xlsx", "deployment"]
    )

    with runtime_of(site.config) as runtime, runtime.db.read() as conn:
        entries = conn.execute(
            select(system.audit_entry.c.actor, system.audit_entry.c.changes)
            .where(system.audit_entry.c.operation == "export")
            .order_by(system.audit_entry.c.sequence)
        ).all()
    assert [(e.actor, json.loads(e.changes)["rows"]) for e in entries] == [
        ("zhang", 1),
        ("admin", 1),
    ]


def test_qiao_export_refuses_bad_arguments_with_one_line_and_no_file(
    run: Run, tmp_path: Path
) -> None:
    target = tmp_path / "商机.pdf"
    cases = [
        (("-o", str(target)), "format must be csv or xlsx, not 'pdf'"),
        (("-o", str(tmp_path / "x"), "--format", "csv", "--order", "[{"), "--order is not valid"),
        (("-o", str(tmp_path / "missing" / "x.csv")), "is not a folder"),
        (("-o", str(target), "--format", "csv", "--as", "nobody"), "no user named 'nobody'"),
    ]
    for args, message in cases:
        user = () if "--as" in args else ("--as", "admin")
        result = run("export", "opportunity", *user, *args, expect=1)
        assert message in result.output and "Traceback" not in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["qiao-kek.json", "qiao.toml"]
