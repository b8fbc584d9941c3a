"""How bootseed marks the ``/etc/fstab`` lines the ``mounts`` module owns: each ends with
``# bootseed`` and is rewritten from the configuration on every boot (the ``volumes``
module's lines end with ``# bootseed volume`` and are not the ``mounts`` module's)."""

from __future__ import annotations

FSTAB = "/etc/fstab"
MARK = "# bootseed"


def is_ours(line: str) -> bool:
    """A line the ``mounts`` module wrote."""
    return line.split()[-2:] == MARK.split()
