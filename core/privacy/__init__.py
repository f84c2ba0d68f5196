"""Personal data under PIPL: consent, retention and lawful erasure (docs/privacy.md).

:mod:`.rules` is what a template declares (``consent_rules:``,
``retention_rules:``), :mod:`.consent` the guard that refuses a record whose
person has not consented, :mod:`.erasure` erasure requests and the retention
sweep, and :mod:`.plugin` wires them into the records service's write hooks,
GraphQL and the CLI. Masked reads are :mod:`qiao.core.masking`.
"""
