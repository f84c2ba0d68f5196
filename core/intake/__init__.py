"""Public intake pages: a form for an entity, served without sign-in (docs/intake.md).

:mod:`.forms` is what a template declares (``intake_forms:``), :mod:`.links`
the signed links that prefill a form with a record (and that QR codes carry),
:mod:`.page` the HTML, :mod:`.routes` the endpoints, and :mod:`.plugin` wires
them in. Submissions are written through the records service as the form's
declared actor, with the same validation as any other write.
"""
