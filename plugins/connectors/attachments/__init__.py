"""Files kept with records: uploaded over HTTP or taken from mail, stored in the object
store, listed and downloaded under the rules of the record they belong to.

See docs/connectors/attachments.md.
"""
