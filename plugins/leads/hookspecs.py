"""The leads plugin's own hook: other plugins may judge a lead's buying intent.

Declared here, not in the core, because only the leads plugin calls it; the
plugin module names this module in ``QIAO_HOOKSPECS`` so that Qiao adds it to
the deployment's hooks. A plugin that implements it depends on ``leads``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from qiao.api import hookspec


@hookspec
def qiao_classify_lead(text: str, lead: dict[str, Any]) -> tuple[int, Sequence[str]] | None:
    """Judge a lead's buying intent from its words: a score and tags.

    Called by the leads plugin inside the write's transaction, before a lead
    is stored, whenever it is created or its description, company or industry
    change. Keep it fast and local: it runs once per lead, imports included.

    :param text: the lead's description, company and industry, joined by spaces.
    :param lead: the values being written, by field name (read-only).
    :returns: ``(score, tags)`` with a score from 0 to 100 and tags such as
        ``["高意向", "工业客户"]``, or ``None`` to abstain. Results are collected:
        the lead keeps the highest score and every tag, in load order.
    """
