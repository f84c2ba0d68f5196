"""Booking overlaps: no two records with the same key may overlap in time (docs/bookings.md).

A manifest's ``bookings:`` section names an entity, its key field (a teacher, a
room, a doctor) and its start and end fields. Every create and update is
checked in its own transaction, under a lock on the key, so two concurrent
bookings of one teacher cannot both succeed.
"""
