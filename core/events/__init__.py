"""Durable events: the outbox every write fills, and the workers that act on it.

A record change writes its :class:`~qiao.core.events.model.Event` to the
``qiao_event`` table in the write's own transaction (:mod:`.plugin`), so an
event exists exactly when its change does. Workers (:mod:`qiao.core.worker`,
above the runtime they serve) fire due timers into events, fan each event out
into one delivery per interested handler, claim deliveries under a lease, run
them, and record every attempt; the steps they take are this package's.
docs/events.md describes the model and its guarantees.
"""
