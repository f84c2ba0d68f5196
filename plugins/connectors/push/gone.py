"""A record deleted between its event and the push: nothing to send, and said so.

The outbox delivers an account's or a quote's event after the write that raised it
commits, so the record may be deleted before the worker reads it. There is then nothing
to push, and retrying cannot bring it back: the delivery ends as done, the skip is logged
and listed in the sync log as an ``OK`` call ``push <entity>`` naming the record, so an
integrator who misses the customer or the order in the ERP finds why.
"""

from __future__ import annotations

import logging

from qiao.api import Delivery
from qiao.plugins.connectors import host
from qiao.plugins.connectors.common.calls import CallRecord, payload_hash
from qiao.plugins.connectors.settings import Connector

LOG = logging.getLogger("qiao.connectors.push")


def skipped(delivery: Delivery, connector: Connector, entity: str) -> None:
    """Log and list the skip of the delivery's record, deleted before it was pushed."""
    record_id = delivery.event.record_id
    LOG.info(
        "%s %s was deleted before it was pushed to %s; skipped",
        entity,
        record_id,
        connector.name,
    )
    call = CallRecord(
        vendor=connector.vendor,
        operation=f"push {entity}",
        status="ok",
        latency_ms=0.0,
        payload_sha256=payload_hash({"key": record_id}),
        attempt=delivery.attempt,
        at=delivery.runtime.records.clock().timestamp(),
        detail=f"{record_id}: deleted before it was pushed; skipped",
    )
    host.write_calls(delivery.runtime, connector.id, [call])
