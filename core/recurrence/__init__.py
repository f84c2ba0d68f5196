"""Recurring plans: "every 6 months from the install date, a maintenance ticket 14 days ahead".

A manifest's ``recurring_plans:`` section declares them (docs/recurrence.md).
Each followed record keeps one stored timer for its next occurrence; the
worker that fires it creates the record and a ``plan_occurrence`` whose unique
key makes the creation happen once per due date, whatever reruns and
concurrent workers do.
"""
