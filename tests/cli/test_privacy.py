"""``qiao privacy erase`` and ``qiao privacy retention`` against a deployment (docs/privacy.md)."""

from __future__ import annotations

import json

from qiao.core.records.context import Actor, Source


def test_erase_prints_the_report_and_retention_runs(run, qiao_runtime):
    records = qiao_runtime.records
    with records.transaction(Actor.system(), Source.SYSTEM) as ctx:
        records.create(
            ctx,
            "retention_rule",
            {
                "name": "lead_identity",
                "entity": "lead",
                "action": "ANONYMISE",
                "fields": ["name", "mobile", "email"],
            },
        )
        lead = records.create(ctx, "lead", {"name": "王芳", "mobile": "13812345678"})
    erased = json.loads(run("privacy", "erase", "lead", lead["id"], "--reason", "本人申请").output)
    assert erased == {
        "erased": [
            {
                "entity": "lead",
                "id": lead["id"],
                "rule": "lead_identity",
                "action": "ANONYMISED",
                "fields": ["name", "mobile", "email"],
            }
        ],
        "kept": [],
    }
    with records.db.read() as conn:
        stored = records.get(conn, "lead", lead["id"], actor=Actor.system())
    assert (stored["name"], stored["mobile"]) == ("已匿名", None)
    assert json.loads(run("privacy", "retention").output) == {"erased": [], "kept": []}
    refused = run("privacy", "erase", "account", lead["id"], expect=1)
    assert "Error:" in refused.output
