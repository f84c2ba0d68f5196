"""Name keys of the conflict check, and the month arithmetic of the bankruptcy windows."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from qiao.templates_market.law_firms import names
from qiao.templates_market.law_firms.bankruptcy import add_months
from qiao.templates_market.law_firms.billing import billed


@pytest.mark.parametrize(
    "written",
    [
        "深圳云帆智能科技有限公司",
        "云帆智能科技股份有限公司",
        "（深圳）云帆智能科技",
        "深圳市云帆智能科技集团有限公司",
        "广东省深圳市云帆智能科技有限责任公司",
        "云帆智能科技 有限公司",
    ],
)
def test_spellings_of_one_company_share_a_key(written: str) -> None:
    assert names.key(written) == "云帆智能科技"


def test_people_and_places_keep_their_names() -> None:
    assert names.key("张伟") == "张伟"
    assert names.key("北京") == "北京"
    assert names.key("深圳") == "深圳"
    assert names.key("深圳市") == "深圳市"


def test_former_names_split_on_lines_and_chinese_separators() -> None:
    text = "深圳云帆电子有限公司\n云帆科技、云帆智造；云帆"
    assert names.split_names(text) == ["深圳云帆电子有限公司", "云帆科技", "云帆智造", "云帆"]
    assert names.keys_field(["深圳云帆电子有限公司", "云帆电子"]) == "|云帆电子|"
    assert names.needle("云帆电子有限公司") == "|云帆电子|"


def test_exact_forms_ignore_width_spacing_and_brackets() -> None:
    assert names.full_form("云帆（深圳） 科技ＡＢ") == names.full_form("云帆(深圳)科技ab")


@pytest.mark.parametrize(
    ("day", "months", "expected"),
    [
        ("2026-06-30", 3, "2026-09-30"),
        ("2026-11-30", 3, "2027-02-28"),
        ("2027-11-30", 3, "2028-02-29"),
        ("2026-01-31", 1, "2026-02-28"),
    ],
)
def test_months_end_on_the_same_day_or_the_month_end(day: str, months: int, expected: str) -> None:
    assert add_months(dt.date.fromisoformat(day), months) == dt.date.fromisoformat(expected)


@pytest.mark.parametrize(
    ("hours", "expected"), [("0.01", "0.1"), ("0.10", "0.1"), ("1.01", "1.1"), ("2.95", "3.0")]
)
def test_hours_bill_in_tenths_rounded_up(hours: str, expected: str) -> None:
    assert billed(Decimal(hours)) == Decimal(expected)
