"""Build bootseed disk images (raw, qcow2), seed discs, and boot them under QEMU."""

__version__ = "0.1.0"
