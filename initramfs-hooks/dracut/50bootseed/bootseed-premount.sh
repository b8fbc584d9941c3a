#!/bin/sh
# dracut pre-mount hook: bootseed's early stage. dracut sources this file, so it never
# exits and never fails: the stage records its own errors in /run/bootseed/seed.json.
type getargbool >/dev/null 2>&1 || . /lib/dracut-lib.sh

# getargbool's cheap check knows 0, no and off; the stage itself honours every off word
# of contract/cmdline.py (OFF_WORDS) for bootseed.early and for bootseed (bootseed=off:
# nothing of bootseed this boot, the initramfs stage included).

if [ -r /etc/bootseed-early.conf ] && getargbool 1 bootseed.early && getargbool 1 bootseed; then
	. /etc/bootseed-early.conf
	# shellcheck disable=SC2086
	"${BOOTSEED_PYTHON:-/usr/bin/python3}" -I -S -m bootseed.early premount \
		--resolv-conf /etc/resolv.conf --kmsg $BOOTSEED_PREMOUNT_ARGS || :
fi
