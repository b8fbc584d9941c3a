"""What the apt modules share: the apt configuration, sources, keys and apt-get runs.

The modules (``apt_configure``, ``apt_pipelining``,
``package_update_upgrade_install``) stay thin: they read their keys and call
these pieces, each of which has one job and its own tests.
"""
