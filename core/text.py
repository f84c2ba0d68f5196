"""Text that no database can store: NUL and lone surrogates.

JSON (``"\\u0000"``, ``"\\ud800"``) and GraphQL string escapes can carry both,
and Python strings hold them, but PostgreSQL refuses NUL in text and no UTF-8
encoder accepts a lone surrogate. Found at the edge, they are the caller's
input errors (400, ``BAD_USER_INPUT``), never a crash deep in a driver.
"""

from __future__ import annotations

import re
from typing import Any

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
#: Values nested deeper than this are refused before anything walks them.
MAX_NESTING = 64


def unstorable(text: str) -> str | None:
    """What makes ``text`` unstorable ("a NUL character", "a lone surrogate"), or None."""
    found = _UNSTORABLE.search(text)
    if found is None:
        return None
    return "a NUL character" if found.group() == "\x00" else "a lone surrogate (invalid Unicode)"


def json_problem(value: Any) -> str | None:
    """What is wrong with a parsed JSON value (nested too deep, unstorable text), or None.

    Iterative, so a deeply nested value cannot exhaust the stack here.
    """
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, where, depth = stack.pop()
        if depth > MAX_NESTING:
            return f"the body nests values more than {MAX_NESTING} levels deep"
        if isinstance(item, str):
            problem = unstorable(item)
            if problem is not None:
                return f"{where or 'the body'} contains {problem}"
        elif isinstance(item, dict):
            for key, inner in item.items():
                problem = unstorable(key)
                if problem is not None:
                    return f"a key in {where or 'the body'} contains {problem}"
                stack.append((inner, f"{where}.{key}" if where else key, depth + 1))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]", depth + 1) for i, inner in enumerate(item))
    return None
