"""Each mask, in Python and in SQL on both databases, gives the same text."""

from __future__ import annotations

import pytest
from sqlalchemy import String, literal, select

from qiao.core.masking import Mask, apply_mask, sql_mask

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
