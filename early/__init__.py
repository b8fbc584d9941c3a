"""bootseed early stage: runs inside the initramfs with the standard library only.

Nothing in this package may import a third-party module at import time;
pyroute2 and the ``blkid`` binding are optional and imported lazily with a
stdlib fallback.
"""
