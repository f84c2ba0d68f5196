"""The automation engine: rules that react to record changes, time and schedules.

A rule is a record of the entity ``automation_rule`` (declared in a manifest's
``automation_rules:`` section or created through GraphQL): a trigger, an
optional condition (a formula) and a list of actions. Workers run rules from
the outbox of events, one transaction per rule and event, with a run record
that makes a repeated delivery a no-op. The notification channels that deliver
in-app notifications (:mod:`qiao.core.notifications`) elsewhere live here too.
See docs/automation.md.
"""
