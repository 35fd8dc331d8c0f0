#!/bin/bash
# Classic device-mapper snapshot round trip, the way snapsetd does it, on ext4
# and on xfs:
#   origin "base" = dm-linear over a loop device, filesystem mounted, data written;
#   load the snapshot tables inactive (snapshot-origin over base-real, snapshot
#   with a COW loop device), FIFREEZE, suspend --nolockfs, resume the snapshot
#   then the origin, FITHAW;
#   overwrite the data in the origin: the snapshot must still show the old data,
#   the origin the new.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

modprobe dm-snapshot

round_trip() {
	local fs=$1 data cow base real mnt smnt size old new
	local name=snaptest-$fs
	step "--- $fs ---"
	data=$(loop_create 512M)
	cow=$(loop_create 128M)
	size=$(sectors "$data")

	# The volume a user would have: a dm-linear device with a filesystem.
	base=$(dm_create "$name" "0 $size linear $data 0")
	case $fs in
	ext4) mkfs.ext4 -q "$base" ;;
	xfs) mkfs.xfs -q "$base" ;;
	esac
	mnt=$(mount_tmp "$base")
	random_file "$mnt/data" 8
	echo "before the snapshot" >"$mnt/marker"
	sync
	old=$(sha "$mnt/data")
	step "origin written: data sha256 ${old:0:16}..."

	# Prepare outside the freeze: base-real maps the same blocks; the snapshot
	# and the new origin table are loaded inactive, so the frozen window is
	# only suspend + resume.
	real=$(dm_create "$name-real" "0 $size linear $data 0")
	dmsetup create "$name-snap" --notable
	defer "dmsetup remove --retry $name-snap"
	dmsetup load "$name-snap" --table "0 $size snapshot $real $cow P 8"
	dmsetup load "$name" --table "0 $size snapshot-origin $real"
	# Undo in reverse: the origin goes back to plain linear before base-real
	# and the snapshot go away.
	defer "dmsetup load $name --table '0 $size linear $data 0' && dmsetup resume $name"

	step "freeze, suspend --nolockfs, commit, resume, thaw"
	fsfreeze -f "$mnt"
	# skip-lockfs: the filesystem is already frozen; a lockfs suspend on top of
	# FIFREEZE fails with EBUSY on this kernel.
	if ! dmsetup suspend --nolockfs "$name"; then
		fsfreeze -u "$mnt"
		fail "dmsetup suspend --nolockfs $name failed on a frozen $fs"
	fi
	# The snapshot must be active before the origin takes writes again.
	dmsetup resume "$name-snap"
	dmsetup resume "$name"
	fsfreeze -u "$mnt"
	udevadm settle

	assert_contains "$(dmsetup table "$name")" "snapshot-origin" "origin table"
	assert_contains "$(dmsetup status "$name-snap")" "snapshot" "snapshot status"

	step "overwrite the origin's data in place"
	dd if=/dev/urandom of="$mnt/data" bs=1M count=8 conv=notrunc,fsync status=none
	echo "after the snapshot" >"$mnt/marker"
	sync
	new=$(sha "$mnt/data")
	assert_ne "$new" "$old" "origin data after the overwrite"

	case $fs in
	ext4) smnt=$(mount_tmp "/dev/mapper/$name-snap" ro) ;;
	# Same filesystem UUID as the mounted origin: xfs needs nouuid.
	xfs) smnt=$(mount_tmp "/dev/mapper/$name-snap" ro,nouuid) ;;
	esac
	assert_eq "$(sha "$smnt/data")" "$old" "$fs snapshot: data sha256"
	assert_eq "$(cat "$smnt/marker")" "before the snapshot" "$fs snapshot: marker"
	assert_eq "$(sha "$mnt/data")" "$new" "$fs origin: data sha256"
	assert_eq "$(cat "$mnt/marker")" "after the snapshot" "$fs origin: marker"

	# The COW store took the overwritten chunks: "<used>/<total> <metadata>".
	local used
	used=$(dmsetup status "$name-snap" | awk '{ split($4, a, "/"); print a[1] }')
	((used > 0)) || fail "$fs snapshot: COW store shows no use ($(dmsetup status "$name-snap"))"
	step "ok: $fs snapshot COW store in use: $used sectors"

	# Tear down now (not at exit) so the next round starts clean.
	cleanup_now
}

require_cmd mkfs.ext4 mkfs.xfs fsfreeze dmsetup
# xfsprogs refuses filesystems under 300 MB; our 512 MiB origin is above that.
round_trip ext4
round_trip xfs
[[ -z $(dmsetup ls | grep snaptest || true) ]] || fail "dm devices left behind: $(dmsetup ls)"
step "ok: no snaptest dm devices left"
