#!/bin/bash
# LVM on the VM's scratch disks: a classic snapshot LV and a thin snapshot LV,
# each checked to hold the data of the moment it was taken while the origin
# moves on. Uses /dev/vda and /dev/vdb and wipes them afterwards.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd lvm mkfs.ext4
pv1=$(scratch_disk 0)
pv2=$(scratch_disk 1)
vg=snaptestvg

defer "scratch_wipe $pv1 $pv2"
defer "pvremove -qq -y $pv1 $pv2"
defer "vgremove -qq -ff $vg"

step "pvcreate and vgcreate on $pv1 $pv2"
pvcreate -qq -y "$pv1" "$pv2"
vgcreate -qq "$vg" "$pv1" "$pv2"
assert_eq "$(vgs --noheadings -o pv_count "$vg" | tr -d ' ')" 2 "physical volumes in $vg"

# $1 origin LV, $2 snapshot LV; writes, checks, overwrites, checks.
check_snapshot() {
	local lv=$1 snaplv=$2 take=$3 mnt smnt old new
	mnt=$(mount_tmp "/dev/$vg/$lv")
	random_file "$mnt/data" 8
	echo "before the snapshot" >"$mnt/marker"
	sync
	old=$(sha "$mnt/data")

	# No fsfreeze here: lvcreate suspends with lockfs, which freezes the
	# filesystem itself (and collides with a FIFREEZE already in place).
	step "taking $snaplv: $take"
	eval "$take"
	udevadm settle

	dd if=/dev/urandom of="$mnt/data" bs=1M count=8 conv=notrunc,fsync status=none
	echo "after the snapshot" >"$mnt/marker"
	sync
	new=$(sha "$mnt/data")
	assert_ne "$new" "$old" "$lv data after the overwrite"

	smnt=$(mount_tmp "/dev/$vg/$snaplv" ro)
	assert_eq "$(sha "$smnt/data")" "$old" "$snaplv: data sha256"
	assert_eq "$(cat "$smnt/marker")" "before the snapshot" "$snaplv: marker"
	assert_eq "$(sha "$mnt/data")" "$new" "$lv: data sha256"
	assert_eq "$(cat "$mnt/marker")" "after the snapshot" "$lv: marker"
}

step "--- classic snapshot ---"
lvcreate -qq -y -L 300M -n classic "$vg"
mkfs.ext4 -q "/dev/$vg/classic"
check_snapshot classic classic-snap "lvcreate -qq -s -L 100M -n classic-snap $vg/classic"
assert_eq "$(lvs --noheadings -o origin "$vg/classic-snap" | tr -d ' ')" classic "origin of classic-snap"
pct=$(lvs --noheadings -o snap_percent "$vg/classic-snap" | tr -d ' ')
step "classic-snap COW use: $pct%"
[[ $pct != 0.00 && -n $pct ]] || fail "classic-snap's COW store is unused ($pct%) after overwriting its origin"

step "--- thin snapshot ---"
lvcreate -qq -y --type thin-pool -L 300M -n pool "$vg"
lvcreate -qq -y -V 200M --thin -n thin "$vg/pool"
mkfs.ext4 -q "/dev/$vg/thin"
# Thin snapshots are created with the activation-skip flag: -K activates anyway.
check_snapshot thin thin-snap "lvcreate -qq -s -n thin-snap $vg/thin && lvchange -qq -ay -K $vg/thin-snap"
assert_eq "$(lvs --noheadings -o segtype "$vg/thin-snap" | tr -d ' ')" thin "segment type of thin-snap"
assert_eq "$(lvs --noheadings -o origin "$vg/thin-snap" | tr -d ' ')" thin "origin of thin-snap"

cleanup_now
assert_eq "$(dmsetup ls | grep -c "^$vg-" || true)" 0 "dm devices of $vg left"
assert_eq "$(blkid -p -o value -s TYPE "$pv1" "$pv2" || true)" "" "signatures left on $pv1 $pv2"
