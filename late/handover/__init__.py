"""Shared pieces of the modules that hand an instance to configuration management.

``puppet``, ``chef``, ``ansible``, ``salt_minion`` and ``mcollective`` write
their agent's configuration in that agent's own format; the formats that are
shared (INI-style ``key = value`` files) are parsed and rewritten here, once.
"""
