#!/bin/bash
# dracut module: bootseed's early stage, the equivalent of the initramfs-tools hook and
# init-premount script (initramfs-hooks/initramfs-tools/). Installed as
# /usr/lib/dracut/modules.d/50bootseed/. Settings come from dracut's configuration
# (/etc/dracut.conf.d/bootseed.conf, see initramfs-hooks/dracut/bootseed.conf):
#   bootseed_venv      the prefix bootseed is installed under (default /usr; a venv's dir)
#   bootseed_with      optional packages to include when installed (default
#                      "blkid pyroute2"; dracut has no klibc ipconfig, so without
#                      pyroute2 the early stage cannot bring the network up)
#   bootseed_optimize  bytecode optimisation level (2 strips docstrings)
#   bootseed_premount_args  extra arguments for "python3 -m bootseed.early premount"
# Turn the stage off with omit_dracutmodules+=" bootseed " (build time) or the kernel
# parameter bootseed.early=off (one boot).

check() {
	[ -x "${bootseed_venv:-/usr}/bin/python3" ] || return 1
	return 0
}

depends() {
	# udev-rules: /dev/disk/by-label for seed discs; base: dracut-lib's getarg.
	echo base udev-rules
	return 0
}

installkernel() {
	# What the stage needs to reach a seed, whatever the build host itself uses.
	hostonly='' instmods virtio_pci virtio_net virtio_blk virtio_scsi ena nvme \
		isofs vfat nls_cp437 nls_iso8859_1 nls_utf8 overlay sr_mod
}

install() {
	local venv="${bootseed_venv:-/usr}"
	local py="$venv/bin/python3" interp list pkg src target lib
	local -a with=()
	interp="$(readlink -f "$py")"
	for pkg in ${bootseed_with-blkid pyroute2}; do
		with+=(--with "$pkg")
	done
	list="$(mktemp)"
	# The module closure is computed from the installed code (bootseed.early.closure).
	if ! "$py" -I -m bootseed.early.closure install --dest "$initdir" \
		--optimize "${bootseed_optimize:-2}" "${with[@]}" >"$list"; then
		dwarn "bootseed: computing the module closure failed; early stage left out"
		rm -f "$list"
		return 0
	fi
	inst_binary "$interp"
	ln_r "$interp" /usr/bin/python3
	while read -r src target; do
		inst_library "$src" "$target"
		# dracut-install resolves the shared libraries of executable files only, and
		# extension modules are not executable (0644): _ssl would arrive without
		# libssl.so.3. So their libraries are installed here, as ldd finds them.
		for lib in $(ldd "$src" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// {print $3}'); do
			inst_library "$lib"
		done
	done <"$list"
	rm -f "$list"
	mkdir -p "$initdir/tmp"
	printf 'BOOTSEED_PYTHON=/usr/bin/python3\nBOOTSEED_PREMOUNT_ARGS="%s"\n' \
		"${bootseed_premount_args-}" >"$initdir/etc/bootseed-early.conf"
	# pre-mount: udev has settled and the initqueue ran (NICs and discs exist), /run is
	# the tmpfs carried over to the real root, and the root is not mounted yet.
	inst_hook pre-mount 50 "$moddir/bootseed-premount.sh"
}
