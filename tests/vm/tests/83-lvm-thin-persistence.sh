#!/bin/bash
# vm-kernels: all
# The rest of a snapshot's life for the lvm and dm-thin providers: a persistent set of an LVM
# classic LV, an LVM thin LV and a dm-thin volume
#   - survives a daemon restart, and a reboot: after it the snapshots are there again (LVM
#     activates its own; snapsetd gives the dm-thin snapshot its table once its pool is set up),
#     with the content of their instant, and the pool's transaction ids agree;
#   - is reconciled at start: an LVM snapshot that snapset made but no record names (the daemon
#     died between the window and writing the record: here made by hand, tagged as snapset
#     tags them) is adopted into its set; a classic snapshot's COW LV that never became one is
#     removed; a recorded snapshot whose LV was removed behind snapset's back is reported and
#     forgotten;
#   - is deleted: by snapshot and by set, and nothing is left (no LV, no device, no thin id).
# The state directory lives on the scratch disk (the VM's own /var does not survive a reboot).
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvm dmsetup mkfs.ext4 jq
modprobe dm-thin-pool

disk=$(scratch_disk 2)
vg=snap83
store=/run/snap83-store
conf="[Daemon]
StateDirectory=$store/state
[Storage]
CowDirectory=$store/cow
DefaultCowSize=8M"

# The dm-thin pool (which LVM does not manage) over two plain LVs, and its thin volume: set up
# by hand at every boot, as an administrator's script would.
setup_dm_thin() {
	dmsetup create t83-pool --table "0 $(sectors /dev/$vg/pdata) thin-pool /dev/$vg/pmeta /dev/$vg/pdata 128 0"
	[[ ${1:-} == new ]] && dmsetup message t83-pool 0 "create_thin 0"
	dmsetup create t83-thin --table "0 $((64 * 2048)) thin /dev/mapper/t83-pool 0"
	udevadm settle
}

teardown() {
	[[ -e $SNAPSET_VM_TMP/rebooting ]] && return 0
	local id
	for id in $(snapsetctl --json list 2>/dev/null | jq -r .id); do
		snapsetctl delete "$id" >/dev/null 2>&1 || true
	done
	umount -q /tmp/t83-* 2>/dev/null || true
	umount -q "$store" 2>/dev/null || true
	dmsetup remove --retry t83-thin 2>/dev/null || true
	dmsetup remove --retry t83-pool 2>/dev/null || true
	vgremove -qq -ff $vg 2>/dev/null || true
	pvremove -qq -y "$disk" 2>/dev/null || true
	scratch_wipe "$disk"
}

mount_all() {
	mkdir -p "$store" /tmp/t83-c /tmp/t83-t /tmp/t83-d
	mount /dev/$vg/store "$store"
	mount /dev/$vg/c /tmp/t83-c
	mount /dev/$vg/t /tmp/t83-t
	mount /dev/mapper/t83-thin /tmp/t83-d
}

# The snapshot of volume $1 in set $2 (JSON), mounted read-only at $3: its marker.
marker_in() {
	local dev
	dev=$(jq -r --arg v "$1" '.snapshots[] | select(.volume == $v) | .device' <<<"$2")
	[[ -b $dev ]] || fail "no snapshot device of $1 ($dev): $2"
	mkdir -p "$3"
	mount -o ro,noload "$dev" "$3"
	cat "$3/marker"
	umount "$3"
}

case $SNAPSET_VM_BOOT in
1)
	scratch_wipe "$disk"
	defer teardown
	pvcreate -qq -y "$disk"
	vgcreate -qq $vg "$disk"
	lvcreate -qq -y -L 64M -n store $vg
	lvcreate -qq -y -L 32M -n c $vg
	lvcreate -qq -y --type thin-pool -L 96M -n pool $vg
	lvcreate -qq -y -V 32M --thin -n t $vg/pool
	lvcreate -qq -y -L 8M -n pmeta $vg
	lvcreate -qq -y -L 128M -n pdata $vg
	dd if=/dev/zero of=/dev/$vg/pmeta bs=1M count=8 status=none
	setup_dm_thin new
	for d in /dev/$vg/store /dev/$vg/c /dev/$vg/t /dev/mapper/t83-thin; do mkfs.ext4 -q "$d"; done
	mount_all
	mkdir -p "$store/state" "$store/cow"
	for m in /tmp/t83-c /tmp/t83-t /tmp/t83-d; do echo "the instant" >"$m/marker"; done
	sync
	# Not snapset_conf: its restore at exit would restart snapsetd with the default state
	# directory, which would then reconcile (adopt, remove) what boot 2 must find. /etc is the
	# VM's tmpfs: the file goes with the reboot anyway.
	mkdir -p /etc/snapset
	printf '%s\n' "$conf" >/etc/snapset/snapsetd.conf
	snapset_restart

	set=$(snapsetctl --json create /dev/$vg/c /dev/$vg/t /dev/mapper/t83-thin)
	id=$(jq -r .id <<<"$set")
	for m in /tmp/t83-c /tmp/t83-t /tmp/t83-d; do echo "after the instant" >"$m/marker"; done
	sync
	assert_eq "$(marker_in /dev/$vg/c "$set" /tmp/t83-s)" "the instant" "classic LV snapshot"
	assert_eq "$(marker_in /dev/mapper/t83-thin "$set" /tmp/t83-s)" "the instant" "dm-thin snapshot"

	snapset_restart
	assert_eq "$(snapsetctl --json list | jq -r .id)" "$id" "the set after a daemon restart"
	assert_eq "$(snapsetctl --json list | jq -r '.snapshots | length')" 3 "its snapshots after a daemon restart"
	step "ok: the set survived a daemon restart"

	# Behind snapset's back, with the daemon stopped: an unrecorded snapshot tagged as snapset's
	# own, a COW LV that never became a snapshot, and a recorded snapshot LV removed.
	systemctl stop snapsetd.service
	orphan=$(cat /proc/sys/kernel/random/uuid) oset=$(cat /proc/sys/kernel/random/uuid)
	lvcreate -qq -s -L 8M -n "snapset-$orphan" --addtag snapset --addtag "snapset_set_$oset" $vg/c
	leftover=$(cat /proc/sys/kernel/random/uuid)
	lvcreate -qq -y -L 8M -n "snapset-$leftover" --addtag snapset --addtag "snapset_set_$oset" $vg
	gone=$(jq -r --arg v /dev/$vg/t '.snapshots[] | select(.volume == $v) | .id' <<<"$set")
	lvremove -qq -f "$vg/snapset-$gone"
	vm_state_set id "$id"
	vm_state_set orphan "$orphan"
	vm_state_set oset "$oset"
	vm_state_set leftover "$leftover"
	vm_state_set gone "$gone"
	umount /tmp/t83-c /tmp/t83-t /tmp/t83-d "$store"
	touch "$SNAPSET_VM_TMP/rebooting"
	vm_reboot
	;;
2)
	id=$(vm_state_get id)
	udevadm settle
	# LVM activates its LVs at boot; snapset's thin snapshots too (made without the skip flag).
	lvs -o lv_name,lv_attr $vg | grep -q 'store.*a' || vgchange -qq -aay $vg
	setup_dm_thin
	mount_all
	since=$(now_usec)
	snapset_conf "$conf"
	# After snapset_conf: deferred commands run last first, and the teardown must delete the
	# sets while snapsetd still has this state directory.
	defer teardown
	journal=$(snapset_journal "$since" | jq -r .MESSAGE)

	set=$(snapsetctl --json list | jq -c --arg id "$id" 'select(.id == $id)')
	[[ -n $set ]] || fail "the persistent set is gone after the reboot: $(snapsetctl list)"
	assert_eq "$(jq -r '[.snapshots[].volume] | sort | join(" ")' <<<"$set")" "/dev/mapper/t83-thin /dev/$vg/c" \
		"the set's snapshots after the reboot (the removed one forgotten)"
	assert_contains "$journal" "$(vm_state_get gone)" "the journal about the removed snapshot"
	assert_contains "$journal" "no longer exists and is forgotten" "the journal about the removed snapshot"
	assert_eq "$(marker_in /dev/$vg/c "$set" /tmp/t83-s)" "the instant" "classic LV snapshot after the reboot"
	assert_eq "$(marker_in /dev/mapper/t83-thin "$set" /tmp/t83-s)" "the instant" "dm-thin snapshot after the reboot"
	assert_eq "$(cat /tmp/t83-d/marker)" "after the instant" "dm-thin origin after the reboot"
	lvm_pool_tids_agree $vg pool
	step "ok: after the reboot the set is back with the content of its instant"

	oset=$(snapsetctl --json list | jq -c --arg id "$(vm_state_get oset)" 'select(.id == $id)')
	[[ -n $oset ]] || fail "the unrecorded snapshot was not adopted: $(snapsetctl list); snapsetd said: $journal"
	assert_eq "$(jq -r '.snapshots[0].id' <<<"$oset")" "$(vm_state_get orphan)" "the adopted snapshot"
	assert_contains "$journal" "adopted" "the journal about the adopted snapshot"
	[[ -z $(lvs --noheadings -o lv_name "$vg/snapset-$(vm_state_get leftover)" 2>/dev/null) ]] ||
		fail "the COW LV that never became a snapshot is still there"
	step "ok: reconciled: the unrecorded snapshot adopted into set $(vm_state_get oset), the stray COW LV removed"

	# Delete: one snapshot, then the sets.
	snap_c=$(jq -r --arg v /dev/$vg/c '.snapshots[] | select(.volume == $v) | .id' <<<"$set")
	assert_success snapsetctl delete "$snap_c"
	thin_id=$(jq -r '.snapshots[] | select(.provider == "dm-thin") | .id' <<<"$set")
	assert_success snapsetctl delete "$id"
	assert_success snapsetctl delete "$(vm_state_get oset)"
	lvm_assert_clean "after deleting everything" $vg
	# The dm-thin snapshot's thin id is gone from the pool too: only the origin (0) remains.
	rc=0
	dmsetup message t83-pool 0 "create_thin 1" || rc=$?
	((rc == 0)) || fail "thin id 1 (the snapshot's) is still in use in the pool"
	dmsetup message t83-pool 0 "delete 1"
	step "ok: deleted; no snapshot LV, device or thin id left"
	;;
*)
	fail "unexpected SNAPSET_VM_BOOT=$SNAPSET_VM_BOOT (this test reboots once)"
	;;
esac
