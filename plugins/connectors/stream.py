"""DingTalk Stream mode in a deployment: ``qiao connector stream NAME`` holds the socket.

An alternative to the HTTP callback route for a deployment DingTalk cannot reach (no
public address): the process opens a Stream connection (:mod:`.dingtalk.stream`) and
keeps each EVENT frame exactly as a callback is kept, a sealed ``connector_callback``
record keyed by the event's ``eventId``, which a worker then acts on (:mod:`.inbound`:
approvals decided in DingTalk, other events kept). A replayed event meets that key and is
acknowledged without being kept again (``REPLAY`` in the sync log). An event Qiao could
not keep (the database away) is answered ``LATER``, so DingTalk sends it again. When the
server disconnects, a new ticket is asked for and the stream goes on; a refused open waits
and tries again, each attempt in the sync log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from qiao.api import BadUserInput, QiaoError, Runtime
from qiao.plugins.connectors import callbacks, clients, host
from qiao.plugins.connectors.common.errors import ConnectorError
from qiao.plugins.connectors.common.replay import Inbound
from qiao.plugins.connectors.dingtalk.stream import ALL_EVENTS, Ending, Frame, serve
from qiao.plugins.connectors.settings import Connector

LOG = logging.getLogger("qiao.connectors.stream")
RETRY_OPEN = 30.0


def inbound_of(frame: Frame) -> Inbound:
    """An EVENT frame as the message a callback would have carried (``EventType`` and the
    event's fields), keyed by its ``eventId``."""
    message = frame.payload()
    message.setdefault("EventType", frame.headers.get("eventType") or frame.topic)
    event_id = frame.headers.get("eventId") or frame.message_id
    return Inbound(message, f"dingtalk:event:{event_id}", True)


def keeper(runtime: Runtime, connector: Connector) -> Callable[[Frame], bool]:
    def keep(frame: Frame) -> bool:
        if frame.type != "EVENT":
            return True  # CALLBACK topics (robot messages) are not subscribed to
        try:
            callbacks.store(runtime, connector, inbound_of(frame))
        except (QiaoError, ConnectorError) as error:
            LOG.warning("stream event %s not kept: %s", frame.message_id, error)
            return False
        return True

    return keep


def connect_once(runtime: Runtime, connector: Connector, stop: Callable[[], bool]) -> Ending:
    """Open one connection with a new ticket and serve it until it ends."""
    with host.wired(runtime, connector.id, connector.vendor) as wiring:
        ticket = clients.dingtalk(runtime, connector, wiring).open_stream(ALL_EVENTS)
    return serve(ticket, keeper(runtime, connector), stop=stop)


def run(
    runtime: Runtime,
    connector: Connector,
    stop: Callable[[], bool],
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Connections one after another until ``stop()``."""
    if connector.vendor != "dingtalk":
        raise BadUserInput(f"{connector.name!r} is not a DingTalk connector", field="name")
    while not stop():
        try:
            ending = connect_once(runtime, connector, stop)
        except ConnectorError as error:
            LOG.warning("DingTalk stream of %s: %s", connector.name, error)
            sleep(error.retry_after or RETRY_OPEN)
            continue
        LOG.info("DingTalk stream of %s ended (%s)", connector.name, ending)
        if ending == "closed":
            sleep(1.0)  # dropped without notice: do not hammer the gateway
