"""Approval steps decided in DingTalk, as the wired tests and the S5 scenario set them up:
the DingTalk connector with its callback's keys, and DingTalk's signed callback that an
instance finished."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from .deployment import add_connector
from .fakes import dingtalk as dingtalk_fake
from .fakes.dingtalk import FakeDingTalk, push

TOKEN, AES_KEY = "dd-token", "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7"
PROCESS_CODE = "PROC-SEAL-01"


def connect(
    client: Any, fake: FakeDingTalk, process: str, decided_by: str, form: Mapping[str, str]
) -> None:
    """The DingTalk connector ``钉钉``, starting an instance of ``PROC-SEAL-01`` for each step
    of the approval process ``process``, decided in Qiao as ``decided_by``."""
    add_connector(
        client,
        name="钉钉",
        vendor="DINGTALK",
        baseUrl=fake.url,
        settings={
            "app_key": dingtalk_fake.APP_KEY,
            "agent_id": dingtalk_fake.AGENT_ID,
            "approvals": {
                process: {
                    "process_code": PROCESS_CODE,
                    "decided_by": decided_by,
                    "form": dict(form),
                }
            },
        },
        appSecret=dingtalk_fake.APP_SECRET,
        callbackToken=TOKEN,
        callbackAesKey=AES_KEY,
    )


def finish(server: Any, instance: str, kind: str = "finish") -> None:
    """DingTalk's callback that ``instance`` changed, signed and encrypted."""
    event = {
        "EventType": "bpms_instance_change",
        "processInstanceId": instance,
        "processCode": PROCESS_CODE,
        "type": kind,
    }
    params, body = push(TOKEN, AES_KEY, dingtalk_fake.APP_KEY, event, "1780300000000", instance)
    answer = httpx.post(f"{server.url}/connectors/钉钉/callback", params=params, content=body)
    assert answer.status_code == 200
