"""Plugin modules that exist only for the plugin system's tests.

They are imported by entry points the tests fake, exactly as an installed
plugin is, so the real loading path (``EntryPoint.load``) is exercised.
"""
