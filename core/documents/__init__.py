"""Documents rendered from records, and QR codes for their intake links (docs/documents.md).

:mod:`.templates` is what a template declares (``document_templates:``),
:mod:`.qr` draws QR codes (SVG and PNG, with segno), :mod:`.render` fills a
document template with a record as the caller reads it and stores the result as
a ``document`` of the record, and :mod:`.graphql` offers both to clients.
"""
