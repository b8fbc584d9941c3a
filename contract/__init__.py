"""The contract both stages stand on: standard library only.

``bootseed.early`` (inside the initramfs) and ``bootseed.late`` (on the real
root) both import this package and nothing of each other's. It holds the seed
cache layout, atomic file writes, the one problem type, the one kernel command
line parser, the one command-line pattern and the one version number
(``setup.cfg`` reads it from here; ``debian/changelog`` is checked against it
by a test).
"""

__version__ = "0.1.0"
