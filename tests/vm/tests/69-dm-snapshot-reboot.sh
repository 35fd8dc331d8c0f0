#!/bin/bash
# Persistence that is true: a persistent dm-snapshot set across a reboot. Its two origins come
# back at boot 2 (an administrator's script sets up their tables), then the boot goes on in
# the order a real one takes: snapset-activate.service, then the local filesystems mounted and
# written, then snapsetd.
#   - snapset-activate.service is enabled and ran at boot before local-fs-pre.target;
#   - the origin mounted and written after the early activation keeps its snapshot: re-armed
#     early, it shows exactly its pre-reboot bytes (the checksum of the whole snapshot device);
#   - the origin written before the early activation (as an initramfs or a unit ordered too
#     early would) is not re-armed: its snapshot is reported invalid, with a snapshot-invalid
#     event saying why, and stays so after a restart: it is never re-armed silently;
#   - the set is then deleted: the origins run their own tables again, and nothing is left.
# It is also the tier's proof that a reboot is real (a new boot id) and that disks survive it.
# The state and COW directories live on the scratch disk (the VM's /var does not survive).
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 jq
modprobe dm-snapshot
modprobe loop

disk=$(scratch_disk 2)
store=/run/snap69-store
conf="[Daemon]
StateDirectory=$store/state
[Storage]
CowDirectory=$store/cow
DefaultCowSize=16M"

# Three 64 MiB slices of the disk, as an administrator's script would set them up at boot.
setup_volumes() {
	local i=0 n
	for n in t69-store t69-a t69-b; do
		dmsetup create "$n" --table "0 131072 linear $disk $((i * 131072))"
		i=$((i + 1))
	done
	udevadm settle
	[[ ${1:-} == new ]] && mkfs.ext4 -q /dev/mapper/t69-store
	mkdir -p "$store"
	mount /dev/mapper/t69-store "$store"
}

teardown() {
	[[ -e $SNAPSET_VM_TMP/rebooting ]] && return 0
	local id
	for id in $(snapsetctl --json list 2>/dev/null | jq -r .id); do
		snapsetctl delete "$id" >/dev/null 2>&1 || true
	done
	umount -q /tmp/t69-a /tmp/t69-b "$store" 2>/dev/null || true
	dmsetup remove --retry t69-a t69-b t69-store 2>/dev/null || true
	scratch_wipe "$disk"
}

case $SNAPSET_VM_BOOT in
1)
	scratch_wipe "$disk"
	defer teardown
	setup_volumes new
	mkdir -p "$store/state" "$store/cow"
	for v in a b; do
		mkfs.ext4 -q "/dev/mapper/t69-$v"
		mkdir -p "/tmp/t69-$v"
		mount "/dev/mapper/t69-$v" "/tmp/t69-$v"
		echo "the instant" >"/tmp/t69-$v/marker"
	done
	sync
	# Not snapset_conf: its restore at exit would restart snapsetd with the default state
	# directory. /etc is the VM's tmpfs: the file goes with the reboot anyway.
	mkdir -p /etc/snapset
	printf '%s\n' "$conf" >/etc/snapset/snapsetd.conf
	snapset_restart
	set=$(snapsetctl --json create /dev/mapper/t69-a /dev/mapper/t69-b)
	id=$(jq -r .id <<<"$set")
	for v in a b; do
		echo "after the instant" >"/tmp/t69-$v/marker"
		umount "/tmp/t69-$v"
	done
	snap_b=$(jq -r '.snapshots[] | select(.volume == "/dev/mapper/t69-b") | .device' <<<"$set")
	vm_state_set id "$id"
	vm_state_set sum_b "$(sha "$snap_b")"
	vm_state_set snap_a "$(jq -r '.snapshots[] | select(.volume == "/dev/mapper/t69-a") | .id' <<<"$set")"
	vm_state_set boot_id "$(cat /proc/sys/kernel/random/boot_id)"
	step "set $id made; the snapshot of t69-b: $(vm_state_get sum_b)"
	systemctl stop snapsetd.service
	# The store stays mounted: the snapshots' loop devices hold their COW files open, as they
	# would at any reboot. What the stores hold is on disk.
	sync
	touch "$SNAPSET_VM_TMP/rebooting"
	vm_reboot
	;;
2)
	id=$(vm_state_get id)
	assert_ne "$(cat /proc/sys/kernel/random/boot_id)" "$(vm_state_get boot_id)" "boot id (a real reboot happened)"
	# This boot's own run of the unit found nothing to do (the state directory is on the
	# scratch disk, not mounted yet), but it ran, before the local filesystems.
	assert_eq "$(systemctl is-enabled snapset-activate.service)" enabled "snapset-activate.service"
	ran=$(systemctl show -P ExecMainExitTimestampMonotonic snapset-activate.service)
	pre=$(systemctl show -P ActiveEnterTimestampMonotonic local-fs-pre.target)
	((ran > 0 && ran <= pre)) || fail "snapset-activate.service ended at $ran us, local-fs-pre.target was reached at $pre us"
	setup_volumes
	snapset_remember_tables t69-a t69-b
	mkdir -p /etc/snapset /tmp/t69-a /tmp/t69-b
	printf '%s\n' "$conf" >/etc/snapset/snapsetd.conf
	# Written before the early activation.
	mount /dev/mapper/t69-a /tmp/t69-a
	echo "written before the early activation" >/tmp/t69-a/boot-marker
	sync
	since=$(now_usec)
	systemctl start snapset-activate.service
	journalctl --sync
	early=$(journalctl --no-pager -o cat --since "@$((since / 1000000))" _SYSTEMD_UNIT=snapset-activate.service)
	assert_contains "$early" "1 snapshot(s) re-armed before the local filesystems are mounted, 1 left to snapsetd" "the early activation"
	step "early activation: $early"
	# Then mounted and written, as /etc/fstab and the services after it would.
	mount /dev/mapper/t69-b /tmp/t69-b
	echo "written after the early activation" >/tmp/t69-b/boot-marker
	sync
	snapset_conf "$conf"
	defer teardown
	list=$(snapsetctl --json list)
	step "after the reboot: $list"
	assert_eq "$(jq -r .id <<<"$list")" "$id" "the set is there"
	status_of() { jq -r --arg v "$1" '.snapshots[] | select(.volume == $v) | .status' <<<"$list"; }
	assert_eq "$(status_of /dev/mapper/t69-b)" valid "the snapshot of the origin written after the early activation"
	snap_b=$(jq -r '.snapshots[] | select(.volume == "/dev/mapper/t69-b") | .device' <<<"$list")
	udevadm settle
	assert_eq "$(sha "$snap_b")" "$(vm_state_get sum_b)" "the re-armed snapshot, byte for byte"
	assert_eq "$(status_of /dev/mapper/t69-a)" invalid "the snapshot of the origin written before the early activation"
	event=$(snapset_journal "$since" | jq -r 'select(.MESSAGE | test("is invalid")) | .MESSAGE')
	assert_contains "$event" "$(vm_state_get snap_a)" "the event names the snapshot"
	assert_contains "$event" "was written since it came up" "the event says why"
	snapset_restart
	list=$(snapsetctl --json list)
	assert_eq "$(status_of /dev/mapper/t69-a)" invalid "still invalid after a restart (never re-armed)"
	step "ok: re-armed early, then written: its pre-reboot bytes; written before: invalid, with the event, for good"
	assert_success snapsetctl delete "$id"
	snapset_assert_clean "after deleting the set at boot 2" "$store/cow" t69-a t69-b
	step "ok: deleted; both origins run their own tables; nothing left"
	;;
esac
