"""What plugins and templates bring into a database besides tables, kept in step with them.

Declared records (roles, rules, pipelines, approval processes), data
migrations between package versions, demo data, and the record of which
version of each package the database holds. :func:`apply.migrate` applies all
of it with the tables, in one transaction, and answers with a :class:`Plan`.
"""

from qiao.core.packages.plan import Plan

__all__ = ["Plan"]
