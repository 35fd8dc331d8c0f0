#!/bin/bash
# Revert and break through the dm-snapshot provider (snapshot-merge), on an ext4 of a dm-linear
# slice of a scratch disk with two snapshots, A1 then A2, from two sets:
#   boot 1
#   - revert while the volume is mounted: VSS_E_VOLUME_IN_USE (exit 37), nothing changed;
#   - revert --force-dismount --wait to A2: the volume holds A2's bytes; A1, its sibling on the
#     same origin, stays valid and byte-identical (the merge's writes were copied into its store);
#   - revert to A1 with snapsetd killed right after the revert is recorded (kill=revert-committed)
#     and not restarted, then a reboot: the merge never ran;
#   boot 2
#   - the early activation (snapset-activate.service, before the local filesystems) sets the merge
#     up from the record: the volume runs snapshot-merge;
#   - snapsetd finishes it: the volume holds A1's bytes under its own table, and nothing of
#     snapset is left (devices, loop devices, stores);
#   - break: the snapshot becomes an image file next to the stores on a loop device that stays,
#     with a new filesystem UUID, mounted beside its origin with the data of its point in time;
#     snapset no longer lists it.
# The state and COW directories live on the scratch disk (the VM's /var does not survive).
# x_out, x_err and x_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 blkid jq losetup
modprobe dm-snapshot
modprobe loop

disk=$(scratch_disk 2)
store=/run/snap75-store
mnt=/tmp/t75-a
vol=/dev/mapper/t75-a
conf="[Daemon]
StateDirectory=$store/state
[Storage]
CowDirectory=$store/cow
DefaultCowSize=16M"

# Two slices of the disk, as an administrator's script would set them up at boot: the store
# (160 MiB: two 16 MiB stores, then the break's copy of the 64 MiB volume), the volume (64 MiB).
setup_volumes() {
	dmsetup create t75-store --table "0 327680 linear $disk 0"
	dmsetup create t75-a --table "0 131072 linear $disk 327680"
	udevadm settle
	[[ ${1:-} == new ]] && mkfs.ext4 -q /dev/mapper/t75-store && mkfs.ext4 -q "$vol"
	mkdir -p "$store" "$mnt"
	mount /dev/mapper/t75-store "$store"
	mkdir -p "$store/state" "$store/cow"
}

teardown() {
	[[ -e $SNAPSET_VM_TMP/rebooting ]] && return 0
	local id f
	rm -f /run/systemd/system/snapsetd.service.d/75-no-restart.conf /run/snapset-test-hooks
	systemctl unset-environment SNAPSETD_TEST_HOOKS_FILE
	systemctl daemon-reload
	systemctl start snapsetd.socket
	for id in $(snapsetctl --json list 2>/dev/null | jq -r .id); do
		snapsetctl delete "$id" >/dev/null 2>&1 || true
	done
	rm -f /etc/snapset/snapsetd.conf
	systemctl restart snapsetd.service || true
	umount -q "$mnt" 2>/dev/null || true
	for f in "$store/cow/"*.img; do
		[[ -e $f ]] && losetup -j "$f" -O NAME -n | xargs -r -n 1 losetup -d
	done
	umount -q "$store" 2>/dev/null || true
	dmsetup remove --retry t75-a t75-store 2>/dev/null || true
	scratch_wipe "$disk"
}

# Not snapset_create: its delete at exit would start snapsetd again before the reboot.
create_set() {
	snapsetctl --json create "$@" || fail "snapsetctl create $* failed"
}

status_of() {
	snapsetctl --json show "$1" | jq -r '.status'
}

case $SNAPSET_VM_BOOT in
1)
	scratch_wipe "$disk"
	defer teardown
	setup_volumes new
	mount "$vol" "$mnt"
	random_file "$mnt/data" 4
	sum1=$(sha "$mnt/data")
	snapset_remember_tables t75-a
	cp "$SNAPSET_VM_TMP/.table.t75-a" "$store/table"
	# Not snapset_conf: its restore at exit would restart snapsetd with the default state
	# directory. /etc is the VM's tmpfs: the file goes with the reboot anyway.
	mkdir -p /etc/snapset
	printf '%s\n' "$conf" >/etc/snapset/snapsetd.conf
	snapset_restart

	s1_json=$(create_set "$vol")
	s1_id=$(jq -r .id <<<"$s1_json")
	snap1=$(jq -r '.snapshots[0].id' <<<"$s1_json")
	dev1=$(jq -r '.snapshots[0].device' <<<"$s1_json")
	udevadm settle
	dev1_sum=$(sha "$dev1")
	random_file "$mnt/data" 4
	sum2=$(sha "$mnt/data")
	s2_json=$(create_set "$vol")
	snap2=$(jq -r '.snapshots[0].id' <<<"$s2_json")
	random_file "$mnt/data" 4
	[[ $(sha "$mnt/data") != "$sum2" && $sum1 != "$sum2" ]] || fail "the data did not change (the test proves nothing)"
	step "A1 $snap1 (data $sum1), A2 $snap2 (data $sum2), the volume changed since"

	snapset_capture x snapsetctl revert "$snap2"
	assert_eq "$x_rc" 37 "revert of a mounted volume (stderr: $x_err)"
	assert_contains "$x_err" "is open" "the refusal"
	assert_eq "$(status_of "$snap2")" valid "A2 after the refused revert"

	snapset_capture x snapsetctl revert --force-dismount --wait "$snap2"
	assert_eq "$x_rc" 0 "revert --force-dismount --wait to A2 (stderr: $x_err)"
	step "revert --wait printed: $(tr '\n' '|' <<<"$x_out")"
	assert_contains "$x_out" "merging 0%" "the progress lines"
	assert_contains "$x_out" "Reverted:" "the last line"
	if snapsetctl show "$snap2" >/dev/null 2>&1; then fail "A2 is still listed after its merge"; fi
	assert_contains "$(dmsetup table t75-a)" "snapshot-origin" "the volume's table (A1 is still on it)"
	assert_eq "$(status_of "$snap1")" valid "A1, the sibling, after A2's merge"
	assert_eq "$(sha "$dev1")" "$dev1_sum" "A1's device, byte for byte, after A2's merge"
	mount "$vol" "$mnt"
	assert_eq "$(sha "$mnt/data")" "$sum2" "the volume's data after the revert to A2"
	umount "$mnt"
	step "ok: reverted to A2, A1 intact"

	# snapsetd dies right after recording the revert to A1, and stays dead until the reboot.
	mkdir -p /run/systemd/system/snapsetd.service.d
	printf '[Service]\nRestart=no\n' >/run/systemd/system/snapsetd.service.d/75-no-restart.conf
	systemctl daemon-reload
	# Not snapset_hooks: its restore at exit would start snapsetd again before the reboot.
	echo kill=revert-committed >/run/snapset-test-hooks
	systemctl set-environment SNAPSETD_TEST_HOOKS_FILE=/run/snapset-test-hooks
	snapset_restart
	snapset_capture x snapsetctl revert "$snap1"
	[[ $x_rc != 0 ]] || fail "the revert answered although snapsetd was to be killed: $x_out"
	# Nothing may start it again through its socket either, until the reboot.
	systemctl stop snapsetd.socket
	sleep "$(scaled 1)"
	[[ $(systemctl is-active snapsetd.service) != active ]] || fail "snapsetd runs again after the kill"
	assert_contains "$(dmsetup table t75-a)" "snapshot-origin" "the volume's table (the merge has not started)"
	assert_eq "$(jq -r '.. | objects | select(.id? == "'"$snap1"'") | .revert' "$store/state/sets/$s1_id.json")" merging \
		"the revert in the record of A1's set"
	vm_state_set snap1 "$snap1"
	vm_state_set sum1 "$sum1"
	vm_state_set boot_id "$(cat /proc/sys/kernel/random/boot_id)"
	sync
	touch "$SNAPSET_VM_TMP/rebooting"
	vm_reboot
	;;
2)
	snap1=$(vm_state_get snap1)
	assert_ne "$(cat /proc/sys/kernel/random/boot_id)" "$(vm_state_get boot_id)" "boot id (a real reboot happened)"
	setup_volumes
	defer teardown
	cp "$store/table" "$SNAPSET_VM_TMP/.table.t75-a"
	mkdir -p /etc/snapset
	printf '%s\n' "$conf" >/etc/snapset/snapsetd.conf
	systemctl start snapset-activate.service
	assert_contains "$(dmsetup table t75-a)" "snapshot-merge" "the volume's table after the early activation"
	step "early activation: the merge of A1 runs again"
	snapset_conf "$conf"
	for _ in $(seq "$(scaled 60)"); do
		snapsetctl show "$snap1" >/dev/null 2>&1 || break
		sleep 1
	done
	if snapsetctl show "$snap1" >/dev/null 2>&1; then
		fail "A1 is still listed $(scaled 60) s after the restart: $(snapsetctl show "$snap1")"
	fi
	snapset_assert_clean "after the revert to A1" "$store/cow" t75-a
	mount "$vol" "$mnt"
	assert_eq "$(sha "$mnt/data")" "$(vm_state_get sum1)" "the volume's data after the revert to A1"
	step "ok: the revert recorded before the reboot was finished after it"

	snapset_create b "$vol"
	random_file "$mnt/data" 1
	snapset_capture x snapsetctl break "$b_id"
	assert_eq "$x_rc" 0 "break (stderr: $x_err)"
	dev=$(tail -n 1 <<<"$x_out")
	[[ $dev == /dev/loop* && -b $dev ]] || fail "break printed '$x_out', not a loop device"
	image=$(losetup -n -O BACK-FILE "$dev")
	[[ $image == "$store/cow/t75-a_snap_"*.img ]] || fail "the broken-off volume's backing file is '$image'"
	if snapsetctl show "$b_id" >/dev/null 2>&1; then fail "snapset still lists the broken set"; fi
	left=$(dmsetup ls | awk '$1 ~ /^snapset-/ { print $1 }')
	[[ -z $left ]] || fail "dm devices left after the break: $left"
	[[ $(blkid -s UUID -o value "$dev") != "$(blkid -s UUID -o value "$vol")" ]] ||
		fail "the broken-off filesystem kept its origin's UUID"
	bmnt=$(mount_tmp "$dev")
	assert_eq "$(sha "$bmnt/data")" "$(vm_state_get sum1)" "the data of the broken-off volume"
	echo writable >"$bmnt/new" || fail "the broken-off volume is not writable"
	umount "$bmnt"
	losetup -d "$dev"
	rm -f "$image"
	step "ok: broken off into $image, mounted beside its origin"
	;;
esac
