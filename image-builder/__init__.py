"""Build bootseed disk images (raw, qcow2, OVA), seed discs, and boot them under QEMU."""
