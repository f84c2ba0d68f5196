"""Importing trade-show sheets: messy cells, merged headers, GBK CSVs, reports, resume."""

from __future__ import annotations

import datetime as dt
import io
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from click.testing import CliRunner

from qiao.cli import main as cli_main
from qiao.core.config import Config
from qiao.core.errors import Conflict
from qiao.core.events import timers
from qiao.core.metadata.model import Label
from qiao.core.records.context import Actor
from qiao.core.runtime import Runtime
from qiao.plugins.leads.importing.mapping import Suggester
from qiao.plugins.leads.importing.runner import Importer

HEADER = ["姓名", "手机", "公司", "省份", "行业", "邮箱", "来源", "备注"]
ROWS: list[list[Any]] = [
    [
        "周海峰",
        13862231456.0,
        "苏州精工机械有限公司",
        "江苏",
        "通用设备",
        "zhou@jg.example.com",
        "展会",
        "急需液压阀样品",
    ],
    ["徐丽", "+86 139-6257-8803", "宁波东海（集团）有限公司", "浙江", "汽配", None, "公众号", None],
    [None, None, None, None, None, None, None, None],
    [
        "顾晓东",
        "0086 135 8491 0277",
        "昆山精工",
        "江苏",
        None,
        "ＧＵ＠ks.example.com",
        None,
        "询价",
    ],
    ["钱国平", "12345", "无锡华宇", None, None, None, None, None],
    ["孙静", "１３８６２２３１４５６", "苏州精工机械", None, None, None, None, "同一人再次登记"],
]


def xlsx(rows: list[list[Any]], *, title: str | None = "2026 宁波机床展 签到表") -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    if title:
        sheet.append([title])
        sheet.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADER))
    sheet.append(HEADER)
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def importer(runtime: Runtime, **options: Any) -> Importer:
    return Importer(runtime, Actor.system(), **options)


def leads(runtime: Runtime) -> list[dict[str, Any]]:
    with runtime.db.read() as conn:
        return runtime.records.list(
            conn, "lead", order_by=[{"field": "name"}], first=500, actor=Actor.system()
        ).records


def test_mapping_is_suggested_from_chinese_headers(qiao_runtime: Runtime) -> None:
    table, columns = importer(qiao_runtime).read(xlsx(ROWS), "展会.xlsx", "lead", None)
    assert columns == {
        "姓名": "name",
        "手机": "mobile",
        "公司": "company",
        "省份": "province",
        "行业": "industry",
        "邮箱": "email",
        "来源": "source",
        "备注": "description",
    }
    assert [number for number, _ in table.rows] == [3, 4, 6, 7, 8]


def test_a_suggester_is_shared_per_definition_and_renewed_with_it(
    qiao_runtime: Runtime,
) -> None:
    lead = qiao_runtime.current().entity("lead")
    assert Suggester.of(lead) is Suggester.of(lead)
    assert Suggester.of(lead).field_for("客户留言") == "description"
    relabelled = lead.model_copy(
        update={
            "fields": tuple(
                f.model_copy(update={"label": Label(en="Inquiry", zh_cn="客户留言")})
                if f.name == "intent_score"
                else f
                for f in lead.fields
            )
        }
    )
    assert Suggester.of(relabelled) is not Suggester.of(lead)
    assert Suggester.of(relabelled).field_for("客户留言") == "intent_score"


def test_messy_rows_are_cleaned_refused_or_reported_as_duplicates(qiao_runtime: Runtime) -> None:
    outcome = importer(qiao_runtime).run(xlsx(ROWS), "展会.xlsx", "lead")
    assert (outcome.rows, outcome.created, outcome.errors, outcome.duplicates) == (5, 3, 1, 1)
    problems = {(p.row, p.column, p.kind) for p in outcome.problems}
    assert problems == {(7, "手机", "error"), (8, None, "duplicate")}
    duplicate = next(p for p in outcome.problems if p.kind == "duplicate")
    assert duplicate.reason.startswith("same phone as row 3")
    stored = {lead["name"]: lead for lead in leads(qiao_runtime)}
    assert stored["周海峰"]["mobile"] == "+8613862231456"
    assert stored["周海峰"]["source"] == "TRADE_SHOW"
    assert stored["周海峰"]["intent_tags"] == ["高意向", "工业客户"]
    assert stored["徐丽"]["mobile"] == "+8613962578803"
    assert stored["徐丽"]["source"] == "WECHAT"
    assert stored["顾晓东"]["email"] == "GU@ks.example.com"
    assert stored["顾晓东"]["source"] == "IMPORT"


def test_keep_stores_duplicates_marked(qiao_runtime: Runtime) -> None:
    outcome = importer(qiao_runtime, duplicates="keep").run(xlsx(ROWS), "a.xlsx", "lead")
    assert (outcome.created, outcome.duplicates) == (4, 1)
    stored = {lead["name"]: lead for lead in leads(qiao_runtime)}
    assert stored["孙静"]["duplicate_matches"][0]["row"] == 3


def test_existing_contacts_and_accounts_are_duplicates_too(
    qiao_runtime: Runtime, create: Callable[..., Any]
) -> None:
    create("account", name="无锡华宇有限公司")
    create("contact", name="徐丽", mobile="13962578803")
    outcome = importer(qiao_runtime).run(xlsx(ROWS[:2]), "a.xlsx", "lead")
    assert outcome.created == 1
    assert "contact" in outcome.problems[0].reason


def test_an_import_notifies_each_owner_once_per_batch_and_sets_first_touch_timers(
    qiao_runtime: Runtime, create: Callable[..., Any]
) -> None:
    rep = create("user", username="show.rep", display_name="展会专员")
    create("lead_assignment_rule", name="展会线索", strategy="USER", user=rep["id"])
    outcome = importer(qiao_runtime, batch_size=2).run(xlsx(ROWS), "展会.xlsx", "lead")
    assert outcome.created == 3
    with qiao_runtime.db.read() as conn:
        page = qiao_runtime.records.list(
            conn,
            "notification",
            filter={"owner_id": {"eq": rep["id"]}},
            first=50,
            actor=Actor.system(),
        )
        stored = leads(qiao_runtime)
        due = {lead["id"]: timers.pending(conn, "lead", lead["id"]) for lead in stored}
    # Rows 3 and 4 make the first batch, row 6 the second (7 is refused, 8 a duplicate).
    assert sorted(n["title"] for n in page.records) == [
        "导入的 1 条线索分配给你",
        "导入的 2 条线索分配给你",
    ]
    assert {(n["kind"], n["link_entity"], n["link_id"]) for n in page.records} == {
        ("leads_imported", "import_run", outcome.run_id)
    }
    assert all(list(d) == ["first_touch_sla"] for d in due.values()) and len(due) == 3


@pytest.mark.parametrize("batch_size", [1, 500])
def test_rows_are_routed_in_a_batch_as_one_by_one(
    qiao_runtime: Runtime,
    create: Callable[..., Any],
    sales_team: dict[str, Any],
    batch_size: int,
) -> None:
    """The rules and round-robin state read once per batch give what per-row reads give."""
    li, zhang = sales_team["li"]["id"], sales_team["zhang"]["id"]
    assert create("lead", name="先到", mobile="0574-86901111")["owner_id"] == li
    importer(qiao_runtime, batch_size=batch_size).run(xlsx(ROWS), "展会.xlsx", "lead")
    owners = {lead["name"]: lead["owner_id"] for lead in leads(qiao_runtime)}
    assert [owners[name] for name in ("周海峰", "徐丽", "顾晓东")] == [zhang, li, zhang]


def test_a_dry_run_writes_nothing_and_reports_the_same(qiao_runtime: Runtime) -> None:
    dry = importer(qiao_runtime).run(xlsx(ROWS), "a.xlsx", "lead", dry_run=True)
    assert (dry.created, dry.errors, dry.duplicates, dry.run_id) == (3, 1, 1, None)
    assert leads(qiao_runtime) == []


def test_gbk_csv_from_chinese_excel(qiao_runtime: Runtime) -> None:
    text = (
        "客户姓名,联系电话,单位名称,需求描述\r\n"
        "吴涛,137-3528-8806,绍兴越州纺织机械厂,液压站改造\r\n"
    )
    outcome = importer(qiao_runtime).run(text.encode("gbk"), "hotline.csv", "lead")
    assert outcome.created == 1
    lead = leads(qiao_runtime)[0]
    assert (lead["name"], lead["mobile"], lead["company"]) == (
        "吴涛",
        "+8613735288806",
        "绍兴越州纺织机械厂",
    )


def test_utf8_csv_with_bom_and_merged_two_level_header(qiao_runtime: Runtime) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["姓名", "联系方式", None, "登记日期"])
    sheet.merge_cells("B1:C1")
    sheet.append([None, "手机", "邮箱", None])
    sheet.append(["赵敏", "139 5274 1180", "zhaomin@hy.example.com", dt.date(2026, 3, 5)])
    out = io.BytesIO()
    book.save(out)
    _, columns = importer(qiao_runtime).read(out.getvalue(), "x.xlsx", "lead", None)
    assert columns == {"姓名": "name", "手机": "mobile", "邮箱": "email"}
    bom = "\ufeffName,Mobile,Company\nJohn,13800138000,Acme Co., Ltd.\n".encode()
    _, english = importer(qiao_runtime).read(bom, "x.csv", "lead", None)
    assert english == {"Name": "name", "Mobile": "mobile", "Company": "company"}


def test_a_failing_batch_leaves_nothing_and_the_rerun_resumes(
    qiao_runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [
        [f"客户{i:02d}", f"1380013{i:04d}", f"公司{i}", None, None, None, None, None]
        for i in range(10)
    ]
    data = xlsx(rows, title=None)
    records = qiao_runtime.records
    create_many = records.create_many

    def failing(ctx: Any, entity: str, rows: Any, **options: Any) -> Any:
        if entity == "lead" and any(values.get("name") == "客户05" for values in rows):
            raise RuntimeError("the disk is full")
        return create_many(ctx, entity, rows, **options)

    monkeypatch.setattr(records, "create_many", failing)
    with pytest.raises(RuntimeError):
        importer(qiao_runtime, batch_size=4).run(data, "big.xlsx", "lead")
    assert len(leads(qiao_runtime)) == 4  # batch 1 committed, batch 2 rolled back whole
    monkeypatch.setattr(records, "create_many", create_many)
    outcome = importer(qiao_runtime, batch_size=100).run(data, "big.xlsx", "lead")
    assert outcome.resumed_after_batch == 1
    assert outcome.created == 6
    assert len(leads(qiao_runtime)) == 10
    with pytest.raises(Conflict):
        importer(qiao_runtime).run(data, "big.xlsx", "lead")


def test_cli_import_with_mapping_report_and_saved_mapping(
    qiao_runtime: Runtime, qiao_config: Config, tmp_path: Path
) -> None:
    sheet = tmp_path / "show.xlsx"
    sheet.write_bytes(xlsx(ROWS))
    config = ["--config", str(qiao_config.path)]
    cli_main._add_plugin_commands(config)
    cli = cli_main.cli
    runner = CliRunner()
    suggested = tmp_path / "mapping.yaml"
    result = runner.invoke(cli, [*config, "import", str(sheet), "--suggest", str(suggested)])
    assert result.exit_code == 0, result.output
    edited = suggested.read_text(encoding="utf-8").replace("备注: description", "备注: null")
    suggested.write_text(edited, encoding="utf-8")
    report = tmp_path / "errors.xlsx"
    args = ["--mapping", str(suggested), "--save-mapping", "展会", "--errors", str(report)]
    result = runner.invoke(cli, [*config, "import", str(sheet), *args])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("5 rows: created 3, 1 duplicates, 1 refused")
    lines = list(openpyxl.load_workbook(report).active.iter_rows(values_only=True))  # type: ignore[union-attr]
    assert lines[0][:5] == ("行号 row", "列 column", "类型 kind", "原因 reason", "姓名")
    assert [line[0] for line in lines[1:]] == [7, 8]
    assert stat.S_IMODE(report.stat().st_mode) == 0o600  # it holds the rows' personal data
    assert all(lead["description"] is None for lead in leads(qiao_runtime))
    other = tmp_path / "next.csv"
    other.write_text("姓名,手机,备注\n新客户,13700001111,x\n", encoding="utf-8")
    result = runner.invoke(cli, [*config, "import", str(other), "--mapping", "展会"])
    assert result.exit_code == 0, result.output
    assert "created 1" in result.output
