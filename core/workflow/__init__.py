"""Pipelines (state machines over an enum field) and multi-step approvals.

Both are declared as data: records of ``pipeline`` and ``approval_process``
written through GraphQL or shipped in manifests, checked when written. The
built-in ``workflow`` plugin (:mod:`qiao.core.workflow.plugin`) enforces them
on every write through the records service. See docs/workflow.md.
"""
