"""Where a lead is: province and city from its address or phone, and the sales region.

Phone numbers say where they were issued: a landline's area code (0574 is
宁波, 浙江) and a mobile number's prefix (phonenumbers' offline geocoder knows
both). Addresses usually start with the province. Sales regions (华东, 华南 ...)
group provinces the way Chinese sales organisations do; routing rules match on
any of the three.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import geocoder

from qiao.api import DEFAULT_PHONE_REGION

#: Short province names (as stored on leads and accounts) by sales region.
REGIONS: dict[str, tuple[str, ...]] = {
    "华东": ("上海", "江苏", "浙江", "安徽", "福建", "江西", "山东"),
    "华南": ("广东", "广西", "海南", "香港", "澳门"),
    "华北": ("北京", "天津", "河北", "山西", "内蒙古"),
    "华中": ("河南", "湖北", "湖南"),
    "西南": ("重庆", "四川", "贵州", "云南", "西藏"),
    "西北": ("陕西", "甘肃", "青海", "宁夏", "新疆"),
    "东北": ("辽宁", "吉林", "黑龙江"),
    "台湾": ("台湾",),
}
PROVINCES = tuple(p for provinces in REGIONS.values() for p in provinces)
_REGION_OF = {p: region for region, provinces in REGIONS.items() for p in provinces}
_SUFFIXES = ("维吾尔自治区", "壮族自治区", "回族自治区", "特别行政区", "自治区", "省", "市")


def region_of(province: str | None) -> str | None:
    """The sales region of a province ('浙江' or '浙江省' -> '华东')."""
    short = short_province(province)
    return _REGION_OF.get(short) if short else None


def short_province(text: str | None) -> str | None:
    """'浙江省' -> '浙江', '广西壮族自治区' -> '广西'; unknown names stay as they are."""
    if not text:
        return None
    text = text.strip()
    for province in PROVINCES:
        if text.startswith(province):
            return province
    return text or None


def from_address(address: str | None) -> tuple[str | None, str | None]:
    """Province and city at the start of an address: '浙江省宁波市北仑区...' -> ('浙江', '宁波')."""
    if not address:
        return None, None
    text = address.strip()
    province = next((p for p in PROVINCES if text.startswith(p)), None)
    if province is None:
        return None, None
    rest = text.removeprefix(province)
    for suffix in _SUFFIXES:
        rest = rest.removeprefix(suffix)
    city = _city_prefix(rest)
    if province in {"北京", "上海", "天津", "重庆"}:
        city = province
    return province, city


def from_phone(e164: str | None) -> tuple[str | None, str | None]:
    """Province and city where a Chinese number was issued, from the offline geocoder."""
    if not e164:
        return None, None
    try:
        number = phonenumbers.parse(e164, DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException:
        return None, None
    if number.country_code != 86:
        return None, None
    place = geocoder.description_for_number(number, "zh")
    return from_address(place) if place else (None, None)


def _city_prefix(text: str) -> str | None:
    """The city name before '市' (or before '地区'/'州' for prefectures)."""
    for marker in ("市", "地区", "自治州", "盟"):
        head, found, _ = text.partition(marker)
        if found and 1 <= len(head) <= 6:
            return head
    return None
