"""Each mask, in Python and in SQL on both databases, gives the same text."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sqlalchemy import String, literal, select

from qiao.core.masking import Mask, apply_mask, sql_mask
from qiao.core.metadata.model import EntityDef
from qiao.core.permissions.rights import FieldAccess
from qiao.core.redaction import redacted_snapshot

EXAMPLES = [
    (Mask.PHONE, "13812345678", "138****5678"),
    (Mask.PHONE, "+8613812345678", "138****5678"),
    (Mask.PHONE, "+14155550123", "+14*****0123"),
    (Mask.PHONE, "138 0013 8000", "138******8000"),
    (Mask.PHONE, "12345", "1****"),
    (Mask.NAME, "张三", "张*"),
    (Mask.NAME, "欧阳娜娜", "欧***"),
    (Mask.NAME, "张", "张"),
    (Mask.ID_NUMBER, "110101199003071234", "110***********1234"),
    (Mask.ID_NUMBER, "11010519491231002X", "110***********002X"),
    (Mask.EMAIL, "zhangsan@example.cn", "z***@example.cn"),
    (Mask.EMAIL, "nobody", "n*****"),
    (Mask.FULL, "任何内容", "****"),
    (Mask.PHONE, "1" * 40, "111" + "*" * 16 + "1111"),
    (Mask.PHONE, "", ""),
]


@pytest.mark.parametrize(("mask", "value", "shown"), EXAMPLES)
def test_python_masks(mask, value, shown):
    assert apply_mask(mask, value) == shown
    assert apply_mask(mask, None) is None


def test_sql_masks_match_python(qiao_runtime):
    db = qiao_runtime.db
    with db.read() as conn:
        for mask, value, shown in EXAMPLES:
            expr = sql_mask(mask, literal(value, String), conn.dialect.name)
            assert conn.execute(select(expr)).scalar_one() == shown, (mask, value)
            null = sql_mask(mask, literal(None, String), conn.dialect.name)
            assert conn.execute(select(null)).scalar_one() is None


def test_a_snapshot_for_a_masked_reader_keeps_the_masks():
    entity = EntityDef.model_validate(
        {
            "name": "patient",
            "plural": "patients",
            "label": {"en": "Patient"},
            "fields": [
                {"name": "name", "type": "string", "mask": "name", "label": {"en": "Name"}},
                {"name": "mobile", "type": "phone", "label": {"en": "Mobile"}},
            ],
        }
    )
    reader = SimpleNamespace(is_unrestricted=False, field_access=lambda e, f: FieldAccess.MASKED)
    record = {"name": "张三", "mobile": "+8613812345678"}
    assert redacted_snapshot(record, entity, reader) == {"name": "张*", "mobile": "138****5678"}
