"""Business calendars as data: China's 2026 calendar, formulas, admins' years, the CLI."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from qiao.cli.main import cli as main
from qiao.core.calendars import BusinessCalendar
from qiao.core.calendars.store import calendars
from qiao.core.errors import MetadataError
from qiao.core.events.timers import pending as pending_timers
from qiao.core.formula.computed import check_computed
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient

D = dt.date.fromisoformat
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MATTER = {
    "name": "court_matter",
    "plural": "court_matters",
    "label": {"en": "Matter", "zh-CN": "案件"},
    "fields": [
        {"name": "title", "type": "string", "label": {"zh-CN": "案由"}},
        {"name": "served_on", "type": "date", "label": {"zh-CN": "送达日"}},
        {"name": "opened_at", "type": "datetime", "label": {"zh-CN": "立案时间"}},
        {"name": "escalated", "type": "boolean", "label": {"zh-CN": "已升级"}},
        # 民事诉讼法 171 and 85: 15 days, the start day excluded, rolled to a working day
        {
            "name": "appeal_by",
            "type": "date",
            "label": {"zh-CN": "上诉期限"},
            "formula": 'NEXTWORKDAY(served_on + 15, "cn")',
        },
        {
            "name": "reply_by",
            "type": "date",
            "label": {"zh-CN": "答复期限"},
            "formula": 'WORKDAY(served_on, 3, "cn")',
        },
        {
            "name": "served_on_workday",
            "type": "boolean",
            "label": {"zh-CN": "工作日送达"},
            "formula": 'ISWORKDAY(served_on, "cn")',
        },
        {
            "name": "court_reply_by",
            "type": "date",
            "label": {"zh-CN": "法院答复期限"},
            "formula": 'WORKDAY(served_on, 3, "court")',
        },
    ],
}


class Declares:
    __name__ = "calendars_fixture"

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [parse_manifest({"entities": [MATTER]}, self.__name__, "law.yaml")]


class CourtCalendar:
    """A plugin's own calendar: the court keeps China's, under its own name."""

    __name__ = "court_calendar"

    @hookimpl
    def qiao_business_calendar(self, runtime: Runtime, name: str) -> BusinessCalendar | None:
        return calendars(runtime).get("cn") if name == "court" else None


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [Declares(), CourtCalendar()]


def test_china_2026_is_shipped_as_data(qiao_runtime: Runtime) -> None:
    cn = calendars(qiao_runtime).get("cn")
    assert cn.is_working_day(D("2026-02-14"))  # a Saturday worked for the Spring Festival
    assert not cn.is_working_day(D("2026-02-16"))  # a Monday off
    assert cn.why_not_working(D("2026-10-05")) == "国庆节"
    assert cn.add_working_days(D("2026-09-30"), 1) == D("2026-10-08")
    assert cn.add_working_days(D("2026-09-30"), 3) == D("2026-10-10")  # the make-up Saturday
    assert cn.add_working_days(D("2026-10-08"), -1) == D("2026-09-30")
    assert cn.next_working_day(D("2026-10-03")) == D("2026-10-08")
    assert cn.working_days_between(D("2026-02-01"), D("2026-02-28")) == 16
    # four working hours from Friday 17:00 end on the make-up Sunday at noon
    friday = dt.datetime(2026, 9, 18, 17, 0, tzinfo=SHANGHAI)
    due = cn.add_working_time(friday, dt.timedelta(hours=4))
    assert due == dt.datetime(2026, 9, 20, 12, 0, tzinfo=SHANGHAI)


def test_formulas_count_working_days(qiao_client: GraphQLClient) -> None:
    made = qiao_client.data(
        'mutation { createCourtMatter(input: {title: "买卖合同纠纷", servedOn: "2026-09-20"}) '
        "{ appealBy replyBy servedOnWorkday } }"
    )["createCourtMatter"]
    # 09-20 + 15 = 10-05, inside the National Day holiday: the period ends on 10-08
    assert made == {"appealBy": "2026-10-08", "replyBy": "2026-09-23", "servedOnWorkday": True}
    listed = qiao_client.data("{ courtMatters { edges { node { appealBy } } } }")
    assert listed["courtMatters"]["edges"][0]["node"]["appealBy"] == "2026-10-08"


def test_a_plugin_offers_a_calendar_of_its_own(qiao_client: GraphQLClient) -> None:
    made = qiao_client.data(
        'mutation { createCourtMatter(input: {title: "合同纠纷", servedOn: "2026-09-30"}) '
        "{ courtReplyBy replyBy } }"
    )["createCourtMatter"]
    # the court's calendar is China's: three working days after 09-30 skip National Day
    assert made == {"courtReplyBy": "2026-10-10", "replyBy": "2026-10-10"}


def test_a_rule_escalates_after_four_working_hours(
    qiao_client: GraphQLClient, qiao_runtime: Runtime
) -> None:
    rule = {
        "name": "escalate_matter",
        "entity": "court_matter",
        "trigger": {"after": {"field": "opened_at", "minutes": 240, "calendar": "cn"}},
        "actions": [{"set": {"escalated": True}}],
    }
    qiao_client.data(
        "mutation($r: AutomationRuleCreateInput!) { createAutomationRule(input: $r) { id } }",
        {"r": rule},
    )
    made = qiao_client.data(
        'mutation { createCourtMatter(input: {openedAt: "2026-09-18T17:00:00+08:00"}) { id } }'
    )["createCourtMatter"]
    with qiao_runtime.db.read() as conn:
        (due,) = pending_timers(conn, "court_matter", made["id"]).values()
    assert due == dt.datetime(2026, 9, 20, 12, 0, tzinfo=SHANGHAI)  # the make-up Sunday
    bad = rule | {
        "name": "on_mars",
        "trigger": {"after": {**rule["trigger"]["after"], "calendar": "mars"}},
    }
    (error,) = qiao_client.errors(
        "mutation($r: AutomationRuleCreateInput!) { createAutomationRule(input: $r) { id } }",
        {"r": bad},
    )
    assert "no business calendar 'mars'" in error["message"]


def test_an_admin_adds_a_local_calendar_and_its_year(qiao_client: GraphQLClient) -> None:
    qiao_client.data(
        'mutation { createBusinessCalendar(input: {name: "cn-gx", base: "cn", '
        'title: "广西", weekend: [6, 7]}) { id } }'
    )
    year = qiao_client.data(
        'mutation($h: JSON!) { createCalendarYear(input: {calendar: "cn-gx", year: 2026, '
        "holidays: $h}) { name } }",
        {"h": [{"name": "壮族三月三", "from": "2026-04-19", "to": "2026-04-21"}]},
    )
    assert year["createCalendarYear"]["name"] == "cn-gx/2026"
    (bad,) = qiao_client.errors(
        'mutation($w: JSON!) { createCalendarYear(input: {calendar: "cn-gx", year: 2027, '
        'holidays: [{name: "x", from: "2027-01-02"}], workdays: $w}) { name } }',
        {"w": ["2027-01-02"]},
    )
    assert bad["extensions"]["code"] == "BAD_USER_INPUT"
    assert "both a holiday and a working day" in bad["message"]
    (unknown,) = qiao_client.errors(
        'mutation { createCalendarYear(input: {calendar: "mars", year: 2026}) { name } }'
    )
    assert unknown["extensions"] == {"code": "BAD_USER_INPUT", "field": "calendar"}


def test_the_local_calendar_adds_to_its_base(qiao_runtime: Runtime, tmp_path: Path) -> None:
    assert qiao_runtime.config.path is not None
    config = str(qiao_runtime.config.path)
    file = tmp_path / "gx.yaml"
    file.write_text(
        "calendars:\n"
        "  - name: cn-gx\n"
        "    base: cn\n"
        "    years:\n"
        "      - year: 2026\n"
        "        holidays: [{name: 壮族三月三, from: 2026-04-20, to: 2026-04-21}]\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    done = runner.invoke(main, ["--config", config, "calendar", "import", str(file)])
    assert done.exit_code == 0, done.output
    assert "created calendar_year cn-gx/2026" in done.output
    # 2026-04-17 is a Friday; Monday and Tuesday are off in Guangxi, not nationally
    added = runner.invoke(main, ["--config", config, "calendar", "add", "cn-gx", "2026-04-17", "1"])
    assert added.output.strip() == "2026-04-22"
    national = runner.invoke(main, ["--config", config, "calendar", "add", "cn", "2026-04-17", "1"])
    assert national.output.strip() == "2026-04-20"
    shown = runner.invoke(main, ["--config", config, "calendar", "show", "cn", "2026"])
    assert "2026-02-14  春节调休（上班）" in shown.output
    assert "2026-10-01  国庆节" in shown.output
    assert calendars(qiao_runtime).get("cn-gx").add_working_days(D("2026-04-17"), 1) == D(
        "2026-04-22"
    )


def test_a_calendar_function_needs_a_calendar_name() -> None:
    bad = MATTER | {
        "fields": [
            *MATTER["fields"][:2],
            {
                "name": "x",
                "type": "date",
                "label": {"en": "x"},
                "formula": "WORKDAY(served_on, 3, title)",
            },
        ]
    }
    from qiao.core.metadata.registry import Registry

    manifest = parse_manifest({"entities": [bad]}, "t", "t.yaml")
    with pytest.raises(MetadataError, match="WORKDAY's calendar is the name"):
        check_computed(Registry.build(list(manifest.entities), []))
