"""The template market: templates as packages, their ``template.yaml``, the shipped index.

A template is a plugin whose content is manifest data in the core's format
(docs/manifest.md). This package reads what describes it as a package
(``template.yaml``: name, version, titles, dependencies, supported Qiao
versions, manifest and demo files), lists the market, and takes a template's
tables out of a database when it is uninstalled. Installing and upgrading are
migrations (:mod:`qiao.core.packages.apply`).
"""
