"""Which column goes to which field: suggested from the headers, edited as YAML, saved as data.

Suggestions compare a header with every field's name and labels (English and
Chinese, from the metadata, so custom fields are found too) and with common
synonyms ("手机号码", "联系电话", "单位名称", "Tel" ...). Exact matches win over
containment ("客户手机号" contains "手机"), longer over shorter. Several columns
may feed one field (手机 and 电话): the first non-empty cell of a row wins.

A mapping is ``{column header: field name}`` (a header mapped to ``null`` is
ignored). It is written to and read from YAML files, and saved by name as an
``import_mapping`` record for the next file of the same shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection

from qiao.api import (
    Actor,
    BadUserInput,
    Catalog,
    EntityDef,
    FieldDef,
    FieldType,
    NotFound,
    Records,
    WriteContext,
    normalise_width,
)

#: Headers people use for a field, beyond its name and labels (compared normalised).
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "姓名",
        "名字",
        "联系人",
        "联系人姓名",
        "客户姓名",
        "称呼",
        "contact",
        "contact name",
        "full name",
        "person",
    ),
    "mobile": (
        "手机",
        "手机号",
        "手机号码",
        "移动电话",
        "联系电话",
        "电话",
        "电话号码",
        "联系方式",
        "座机",
        "mobile",
        "cell",
        "cellphone",
        "phone",
        "tel",
        "telephone",
        "phone number",
    ),
    "phone": ("电话", "座机", "固定电话", "联系电话", "tel", "telephone"),
    "company": (
        "公司",
        "公司名称",
        "单位",
        "单位名称",
        "企业",
        "企业名称",
        "工作单位",
        "客户名称",
        "company",
        "company name",
        "organisation",
        "organization",
        "employer",
    ),
    "province": ("省", "省份", "所在省", "所在省份", "地区", "state", "province"),
    "city": ("市", "城市", "所在城市", "city"),
    "address": ("地址", "详细地址", "公司地址", "通讯地址", "address"),
    "industry": ("行业", "所属行业", "行业类别", "行业分类", "industry", "sector"),
    "email": ("邮箱", "电子邮箱", "电子邮件", "邮件", "邮箱地址", "email", "e-mail", "mail"),
    "source": ("来源", "线索来源", "渠道", "获客渠道", "source", "channel", "lead source"),
    "description": (
        "备注",
        "需求",
        "需求描述",
        "留言",
        "说明",
        "描述",
        "咨询内容",
        "意向产品",
        "通话记录",
        "notes",
        "note",
        "remark",
        "remarks",
        "comment",
        "comments",
        "message",
        "description",
        "inquiry",
    ),
    "purchase_frequency": ("采购频次", "采购频率", "purchase frequency"),
    "title": ("职务", "职位", "title", "job title", "position"),
}
#: Fields an import never fills: bookkeeping the plugin keeps itself.
_NOT_IMPORTED = {"company_key", "name_key", "duplicate_matches", "merged_from", "owner"}
_NOISE = re.compile(r"[\s*:：()（）\[\]【】_\-/\\.]+|必填|选填|required|optional")


def normalise_header(text: str) -> str:
    return _NOISE.sub("", normalise_width(str(text)).lower())


class Suggester:
    """Suggests fields for headers of one entity.

    Building one normalises every label and synonym of the entity (about half a
    millisecond for a lead), so callers judging one submission at a time take
    the shared one of :meth:`of`.
    """

    def __init__(self, entity: EntityDef) -> None:
        self.entity = entity
        self._exact: dict[str, str] = {}
        self._partial: list[tuple[str, str]] = []
        importable = [
            f
            for f in entity.fields
            if f.name not in _NOT_IMPORTED and not f.formula and not f.rollup
        ]
        for field in importable:
            own = [field.name, field.label.en, field.label.zh_cn]
            for word in own:
                if word:
                    self._exact.setdefault(normalise_header(word), field.name)
        for field in importable:
            for word in SYNONYMS.get(field.name, ()):
                key = normalise_header(word)
                self._exact.setdefault(key, field.name)
                if len(key) >= 2:
                    self._partial.append((key, field.name))
        self._partial.sort(key=lambda pair: -len(pair[0]))

    @classmethod
    def of(cls, entity: EntityDef) -> Suggester:
        """The suggester of ``entity``, made once per definition: a changed entity is a new
        definition, so its fields and labels are never those of an older one."""
        made = _SUGGESTERS.get(id(entity))
        if made is None or made.entity is not entity:
            if len(_SUGGESTERS) >= _KEPT_SUGGESTERS:
                _SUGGESTERS.clear()
            made = _SUGGESTERS[id(entity)] = cls(entity)
        return made

    def field_for(self, header: str) -> str | None:
        key = normalise_header(header)
        if not key:
            return None
        if key in self._exact:
            return self._exact[key]
        return next((f for word, f in self._partial if word in key), None)

    def suggest(self, headers: Sequence[str]) -> dict[str, str | None]:
        return {h: self.field_for(h) for h in headers}


#: Suggesters by their definition's identity; each holds its definition, so an id is
#: not reused while its entry is kept. Definitions change rarely: past a few, start over.
_SUGGESTERS: dict[int, Suggester] = {}
_KEPT_SUGGESTERS = 16


def check(
    entity: EntityDef,
    mapping: Mapping[str, Any],
    headers: Sequence[str],
    catalog: Catalog | None = None,
) -> dict[str, str]:
    """A mapping restricted to the file's headers, every target a writable field, or a
    relation by a unique field of the records it points at (``dealer.dealer_code``)."""
    checked: dict[str, str] = {}
    for header, target in mapping.items():
        if target is None:
            continue
        if "." in str(target) and catalog is not None:
            by_key(entity, catalog, str(target), str(header))
            if header in headers:
                checked[str(header)] = str(target)
            continue
        field = entity.field(str(target))
        if field is None or field.name in _NOT_IMPORTED or field.type is FieldType.RELATION:
            raise BadUserInput(
                f"mapping: column {header!r} goes to {target!r}, which {entity.name} cannot import",
                field="mapping",
            )
        if header in headers:
            checked[str(header)] = field.name
    if not checked:
        raise BadUserInput(
            f"mapping: none of its columns is in the file (columns: {', '.join(headers)})",
            field="mapping",
        )
    return checked


def by_key(
    entity: EntityDef, catalog: Catalog, target: str, header: str
) -> tuple[FieldDef, EntityDef, FieldDef]:
    """The relation, the entity it points at and that entity's unique field a target such
    as ``dealer.dealer_code`` names: a file names the dealer by its code, not by an id."""
    relation_name, _, key_name = target.partition(".")
    relation = entity.field(relation_name)
    if (
        relation is None
        or relation.type is not FieldType.RELATION
        or relation.name in _NOT_IMPORTED
        or relation.target is None
    ):
        raise BadUserInput(
            f"mapping: column {header!r} goes to {target!r}, but {entity.name} has no "
            f"relation {relation_name!r} to import",
            field="mapping",
        )
    pointed = catalog.entity(relation.target)
    key = pointed.field(key_name)
    if key is None or not (key.unique or key.external_id) or key.type is FieldType.RELATION:
        raise BadUserInput(
            f"mapping: column {header!r} goes to {target!r}, but {pointed.name}.{key_name} is "
            f"no unique field to find {pointed.name} records by",
            field="mapping",
        )
    return relation, pointed, key


def read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise BadUserInput(f"cannot read mapping {path}: {exc}") from None
    columns = data.get("columns", data) if isinstance(data, dict) else None
    if not isinstance(columns, dict):
        raise BadUserInput(f"{path}: a mapping is 'columns: {{header: field}}'")
    return columns


def write_file(path: Path, entity: str, mapping: Mapping[str, str | None]) -> None:
    text = yaml.safe_dump(
        {"entity": entity, "columns": dict(mapping)}, allow_unicode=True, sort_keys=False
    )
    header = "# Column header -> field name; null ignores the column. Edit and pass --mapping.\n"
    path.write_text(header + text, encoding="utf-8")


def load_saved(records: Records, conn: Connection, name: str) -> dict[str, Any]:
    page = records.list(
        conn, "import_mapping", filter={"name": {"eq": name}}, first=1, actor=Actor.system()
    )
    if not page.records:
        raise NotFound(f"no saved import mapping named {name!r}", field="mapping")
    columns: dict[str, Any] = page.records[0]["columns"]
    return columns


def save(
    records: Records, ctx: WriteContext, name: str, entity: str, mapping: Mapping[str, str]
) -> None:
    """Create or replace the saved mapping ``name``."""
    page = records.list(
        ctx.connection,
        "import_mapping",
        filter={"name": {"eq": name}},
        first=1,
        actor=Actor.system(),
    )
    values = {"name": name, "entity": entity, "columns": dict(mapping)}
    if page.records:
        records.update(ctx, "import_mapping", page.records[0]["id"], values)
    else:
        records.create(ctx, "import_mapping", values)
