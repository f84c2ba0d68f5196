"""Record numbers from a declared pattern: through GraphQL, per year, gap-free, concurrent."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from qiao.core.errors import ConfigurationError, MetadataError
from qiao.core.hookmarkers import hookimpl
from qiao.core.metadata.manifest import Manifest, parse_manifest
from qiao.core.numbering import NumberPattern
from qiao.core.records.context import Actor, Source
from qiao.core.runtime import Runtime
from qiao.core.testing.client import GraphQLClient
from qiao.core.testing.clock import TestClock

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
MANIFEST: dict[str, Any] = {
    "entities": [
        {
            "name": "work_order",
            "plural": "work_orders",
            "label": {"en": "Work order", "zh-CN": "工单"},
            "fields": [
                {
                    "name": "number",
                    "type": "string",
                    "unique": True,
                    "max_length": 20,
                    "label": {"zh-CN": "工单号"},
                },
                {"name": "subject", "type": "string", "required": True, "label": {"zh-CN": "主题"}},
            ],
            "validation_rules": [
                {"name": "no_test", "formula": 'subject <> "test"', "message": "不能叫 test"}
            ],
        }
    ],
    "numbering": [{"entity": "work_order", "field": "number", "pattern": "GD-{YYYY}-{seq:6}"}],
}
CREATE = "mutation($s: String!) { createWorkOrder(input: {subject: $s}) { id number } }"


class Declares:
    __name__ = "numbering_fixture"

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.manifest = manifest

    @hookimpl
    def qiao_entity_manifests(self) -> list[Manifest]:
        return [parse_manifest(self.manifest, self.__name__, "service_template.yaml")]


@pytest.fixture
def qiao_extra_plugins() -> Sequence[Any]:
    return [Declares(MANIFEST)]


def test_numbers_follow_the_pattern_and_restart_each_year(
    qiao_client: GraphQLClient, qiao_clock: TestClock
) -> None:
    qiao_clock.set(dt.datetime(2026, 12, 31, 23, 0, tzinfo=SHANGHAI))
    first = qiao_client.data(CREATE, {"s": "数控系统报警"})["createWorkOrder"]
    second = qiao_client.data(CREATE, {"s": "主轴异响"})["createWorkOrder"]
    assert (first["number"], second["number"]) == ("GD-2026-000001", "GD-2026-000002")
    # 16:30 UTC on the 31st is already 2027 in Shanghai, the declaration's zone
    qiao_clock.set(dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC))
    assert qiao_client.data(CREATE, {"s": "换刀"})["createWorkOrder"]["number"] == "GD-2027-000001"


def test_a_refused_create_gives_its_number_back(qiao_client: GraphQLClient) -> None:
    year = dt.datetime.now(SHANGHAI).year
    assert qiao_client.data(CREATE, {"s": "a"})["createWorkOrder"]["number"] == f"GD-{year}-000001"
    (error,) = qiao_client.errors(CREATE, {"s": "test"})
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert qiao_client.data(CREATE, {"s": "b"})["createWorkOrder"]["number"] == f"GD-{year}-000002"


def test_a_number_is_given_once(qiao_client: GraphQLClient) -> None:
    made = qiao_client.data(CREATE, {"s": "a"})["createWorkOrder"]
    (error,) = qiao_client.errors(
        'mutation($id: ID!) { updateWorkOrder(id: $id, input: {number: "GD-1"}) { id } }',
        {"id": made["id"]},
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "number"}
    assert "cannot be changed" in error["message"]


def test_concurrent_creates_take_distinct_consecutive_numbers(qiao_runtime: Runtime) -> None:
    records = qiao_runtime.records
    numbers: list[str] = []
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def create(i: int) -> None:
        start.wait()
        try:
            for j in range(5):
                with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
                    made = records.create(ctx, "work_order", {"subject": f"w{i}-{j}"})
                numbers.append(made["number"])
        except BaseException as exc:  # reported below, with the thread's error
            failures.append(exc)

    threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures
    assert sorted(int(n[-6:]) for n in numbers) == list(range(1, 31))


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("GD-{YYYY}", "needs exactly one {seq}"),
        ("{seq}-{seq}", "needs exactly one {seq}"),
        ("GD-{yyyy}-{seq}", "unknown part {yyyy}"),
        ("GD-{seq:6", "unbalanced brace"),
    ],
)
def test_bad_patterns_are_refused_with_their_place(pattern: str, message: str) -> None:
    numbering = {"entity": "work_order", "field": "number", "pattern": pattern}
    bad = MANIFEST | {"numbering": [numbering]}
    with pytest.raises(MetadataError, match=r"numbering\.0 \(work_order\)\.pattern") as caught:
        parse_manifest(bad, "t", "t.yaml")
    assert message in caught.value.message


def test_periods_follow_the_date_parts() -> None:
    day = dt.date(2026, 3, 9)
    assert NumberPattern.parse("{seq:4}").period(day) == ""
    assert NumberPattern.parse("HT{YY}{seq:3}").render(day, 7) == "HT26007"
    assert NumberPattern.parse("{YYYY}{MM}-{seq}").period(day) == "2026-03"
    assert NumberPattern.parse("{YYYY}{MM}{DD}{seq:2}").resets == "daily"


def test_literal_text_that_reads_like_a_date_part_stays_text() -> None:
    day = dt.date(2026, 3, 9)
    pattern = NumberPattern.parse("YY{YYYY}MM{seq:3}DD")
    assert pattern.render(day, 5) == "YY2026MM005DD"
    assert pattern.resets == "yearly"
    assert NumberPattern.parse("seq-{seq:2}").render(day, 3) == "seq-03"


class DeclaresMissing(Declares):
    __name__ = "broken_template"


@pytest.mark.parametrize(
    ("numbering", "message"),
    [
        ({"entity": "nothing", "field": "number"}, "unknown entity 'nothing'"),
        ({"entity": "work_order", "field": "subject"}, "without 'required'"),
        ({"entity": "work_order", "field": "absent"}, "no stored field 'absent'"),
    ],
)
def test_declarations_that_do_not_fit_stop_start_up(
    qiao_runtime: Runtime, numbering: dict[str, str], message: str
) -> None:
    from qiao.core.numbering import plugin

    decl = MANIFEST | {"numbering": [numbering | {"pattern": "{seq}"}]}
    runtime = Runtime(qiao_runtime.config, extra_plugins=[DeclaresMissing(decl)])
    try:
        with pytest.raises(ConfigurationError, match=message):
            plugin.check(runtime)
    finally:
        runtime.close()
