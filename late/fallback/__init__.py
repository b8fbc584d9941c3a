"""Keep the distribution's kernel bootable: the GRUB fallback entry and boot counting.

``/boot/dist-kernel/{vmlinuz,initrd.img}`` are hard links to the kernel and
initramfs the image shipped with, so a package upgrade or removal cannot take
them away; a GRUB menu entry (id ``bootseed-fallback``) boots them. GRUB counts
boots of the default entry down in its environment block and boots the fallback
entry once the count is used up; the late agent resets the count when a boot
reached its final stage.
"""
