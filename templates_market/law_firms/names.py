"""Chinese party names reduced to keys, so that a conflict check finds a party however written.

The same company is written 深圳云帆智能科技有限公司, 云帆智能科技有限公司, 深圳市云帆智能科技
股份有限公司 or （深圳）云帆智能科技: the key drops full-width forms, spaces and brackets, a
leading province or city (广东省, 深圳市, 深圳), and a trailing company form (有限公司,
股份有限公司, 有限责任公司, 集团, 公司). Two names are an *exact* match when their
normalised full forms are equal, a *near* match when only their keys are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from qiao.api import normalise_width

#: Company forms, longest first, stripped from the end of a name (repeatedly: 集团有限公司).
COMPANY_SUFFIXES = (
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "合伙企业",
    "分公司",
    "集团",
    "公司",
)

#: Provinces, regions and the larger cities, as they lead company names. A leading 省/市/自治区
#: after one of them is stripped with it.
_PLACE_NAMES = """
    北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽
    福建 江西 山东 河南 湖北 湖南 广东 海南 四川 贵州 云南 陕西
    甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门 深圳 广州
    东莞 佛山 珠海 惠州 中山 杭州 宁波 温州 南京 苏州 无锡 常州
    合肥 厦门 福州 济南 青岛 郑州 武汉 长沙 成都 西安 昆明 贵阳
    南宁 海口 沈阳 大连 长春 哈尔滨 石家庄 太原 南昌 兰州
"""
PLACES = tuple(_PLACE_NAMES.split())

_PLACE = re.compile(
    r"^(?:" + "|".join(sorted(PLACES, key=len, reverse=True)) + r")(?:省|市|自治区|特别行政区)?"
)
_NOISE = re.compile(r"[\s()（）\[\]【】〔〕·・.,，。\"'“”‘’]")
_SEPARATORS = re.compile(r"[\n\r;；、，,]+")


def full_form(name: str) -> str:
    """The name as written, without width, spacing or punctuation differences."""
    return _NOISE.sub("", normalise_width(name)).lower()


def key(name: str) -> str:
    """The name without its place prefix and company form: what two spellings share."""
    text = full_form(name)
    changed = True
    while changed:
        changed = False
        for suffix in COMPANY_SUFFIXES:
            if text.endswith(suffix) and len(text) > len(suffix) + 1:
                text = text[: -len(suffix)]
                changed = True
                break
    # 广东省东莞南粤物流: a province, then a city.
    for _ in range(2):
        stripped = _PLACE.sub("", text, count=1)
        # A name that is only a place (or a person named like one) keeps it.
        if len(stripped) < 2:
            break
        text = stripped
    return text


def split_names(text: str | None) -> list[str]:
    """Former names as written in a field: one a line, or separated by 、 ; ，."""
    if not text:
        return []
    return [part.strip() for part in _SEPARATORS.split(text) if part.strip()]


def keys_field(names: Iterable[str]) -> str:
    """The stored form of a record's keys, ``|key|key|``, found with ``contains "|key|"``."""
    keys = list(dict.fromkeys(key(n) for n in names if n and key(n)))
    return "|" + "|".join(keys) + "|" if keys else ""


def needle(name: str) -> str:
    """What a stored keys field contains when one of its names has ``name``'s key."""
    return f"|{key(name)}|"
