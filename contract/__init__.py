"""The contract both stages stand on: standard library only.

``bootseed.early`` (inside the initramfs) and ``bootseed.late`` (on the real
root) both import this package and nothing of each other's. It holds the seed
cache layout, atomic file writes, the one problem type and the one kernel command
line parser.
"""
