"""Build bootseed disk images (raw, qcow2), seed discs, and boot them under QEMU."""
