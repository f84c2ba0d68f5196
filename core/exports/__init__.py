"""Exports: any filtered, ordered list of an entity as CSV or xlsx (docs/exports.md).

* :mod:`.arguments` reads the filter and order as the entity's GraphQL list does;
* :mod:`.columns` decides the caller's columns, headers and cell values;
* :mod:`.formats` writes CSV and xlsx row by row;
* :mod:`.export` checks an export, streams it through the records service and audits it;
* :mod:`.http` is the API's ``POST /export/{entity}``; ``qiao export`` is in ``cli/exports.py``.
"""
