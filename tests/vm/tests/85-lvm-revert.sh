#!/bin/bash
# RevertToSnapshot on LVM, classic and thin, under real systemd:
#   - a classic LV that is mounted: the revert is pending (as LVM does it), a second revert of the
#     volume is VSS_E_REVERT_IN_PROGRESS (exit 39); once unmounted and reactivated the merge runs,
#     Monitor sees it start and end (and its progress while it lasts), the snapshot goes, and the
#     LV holds the snapshot's bytes again, though 200 MiB were written after the snapshot;
#   - a thin LV with --force-dismount --wait: snapsetd unmounts it, lvm swaps the thin ids at
#     once, and the LV holds the snapshot's bytes;
#   - break: a thin ext4 and a thin xfs LV become ordinary LVs (renamed, untagged, forgotten) with
#     new filesystem UUIDs, mount beside their origins and take writes; a set with a swap LV, whose
#     UUID snapset cannot renew, is refused (VSS_E_CANNOT_REVERT_DISKID, exit 42) and left as it was;
# (A provider that cannot revert: tests/integration/test-external-providers.py; every built-in
# one can: dm-thin in VM 74, dm-snapshot in VM 75.)
# After each: no snapset LV or device left, the thin pool's transaction ids agree.
# r_out, r_err and r_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvcreate lvchange mkfs.ext4 mkfs.xfs mkswap blkid jq sha256sum
vg=snap85
lvm_vg $vg "$(scratch_disk 0)"
lvcreate -qq -y -L 320M -n c0 $vg
lvcreate -qq -y --type thin-pool -L 300M -n pool $vg
lvcreate -qq -y -V 128M --thin -n t0 $vg/pool
for lv in c0 t0; do
	mkfs.ext4 -q /dev/$vg/$lv
done
mnt_c=$(mount_tmp /dev/$vg/c0)
mnt_t=$(mount_tmp /dev/$vg/t0)
random_file "$mnt_c/data" 4
random_file "$mnt_t/data" 4
sum_c=$(sha "$mnt_c/data") sum_t=$(sha "$mnt_t/data")
sync
snapset_create s "$mnt_c:cow-size=256M" "$mnt_t"
snap_c=$(jq -r --arg v "$mnt_c" '.snapshots[] | select(.volume == $v) | .id' <<<"$s_json")
snap_t=$(jq -r --arg v "$mnt_t" '.snapshots[] | select(.volume == $v) | .id' <<<"$s_json")
# After the point in time: new data everywhere, and enough of it that the merge takes a while.
random_file "$mnt_c/data" 4
random_file "$mnt_t/data" 4
dd if=/dev/urandom of="$mnt_c/filler" bs=1M count=200 status=none conv=fsync
sync
[[ $(sha "$mnt_c/data") != "$sum_c" ]] || fail "the origin did not change (the test proves nothing)"
step "set $s_id: classic snapshot $snap_c of $mnt_c, thin snapshot $snap_t of $mnt_t; both origins changed since"

events=$SNAPSET_VM_TMP/t85.events
snapsetctl --json call --more io.snapset.Manager.Monitor >"$events" 2>/dev/null &
monitor=$!
defer "kill $monitor 2>/dev/null || true"
# Connected once its first reply (the current state) is in.
for _ in $(seq "$(scaled 50)"); do
	[[ -s $events ]] && break
	sleep 0.2
done
[[ -s $events ]] || fail "Monitor sent nothing"

# --- classic, mounted: pending; in progress; then merged on the next activation ------------------

snapset_capture r snapsetctl --json revert "$snap_c"
((r_rc == 0)) || fail "revert of a mounted classic LV exited with $r_rc: $r_err"
assert_eq "$(jq -r .revert <<<"$r_out")" pending "the revert of a mounted LV"
assert_eq "$(snapsetctl --json show "$snap_c" | jq -r .revert)" pending "GetSnapshot's revert"
snapset_capture r snapsetctl revert "$snap_c"
assert_eq "$r_rc" 39 "a second revert of the same volume (VSS_E_REVERT_IN_PROGRESS)"
assert_contains "$r_err" "VSS_E_REVERT_IN_PROGRESS" "its message"

umount "$mnt_c"
lvchange -an $vg/c0
lvchange -ay $vg/c0
for _ in $(seq "$(scaled 300)"); do
	snapsetctl show "$snap_c" >/dev/null 2>&1 || break
	sleep 0.5
done
snapset_capture r snapsetctl show "$snap_c"
assert_eq "$r_rc" 26 "the merged snapshot is gone (VSS_E_OBJECT_NOT_FOUND)"
mount /dev/$vg/c0 "$mnt_c"
assert_eq "$(sha "$mnt_c/data")" "$sum_c" "the classic LV's data after the merge: the snapshot's"
[[ ! -e $mnt_c/filler ]] || fail "the file written after the snapshot survived the revert"
# any() over the whole stream: jq 1.6's -e looks at the last input only.
jq -e -s --arg id "$snap_c" 'any(.[]; .event.type == "snapshot-reverted" and .event.snapshotId == $id)' "$events" >/dev/null ||
	fail "Monitor sent no snapshot-reverted for $snap_c: $(cat "$events")"
jq -e -s --arg id "$snap_c" 'any(.[]; .event.type == "snapshot-revert-started" and .event.snapshotId == $id)' "$events" >/dev/null ||
	fail "Monitor sent no snapshot-revert-started for $snap_c: $(cat "$events")"
progress=$(jq -r --arg id "$snap_c" 'select(.event.type == "snapshot-revert-progress" and .event.snapshotId == $id) | .event.message' "$events" | paste -sd, -)
step "ok: classic: pending while mounted, in progress for a second revert, merged after reactivation; Monitor: started, progress [$progress], reverted"

# --- thin, with --force-dismount --wait ----------------------------------------------------------

snapset_capture r snapsetctl revert --force-dismount --wait "$snap_t"
((r_rc == 0)) || fail "revert --force-dismount --wait of the thin LV exited with $r_rc: $r_err"
assert_contains "$r_out" "Reverted" "revert --wait's last word"
[[ -z $(findmnt -n --source /dev/mapper/$vg-t0) ]] || fail "the thin LV is still mounted after --force-dismount"
mount /dev/$vg/t0 "$mnt_t"
assert_eq "$(sha "$mnt_t/data")" "$sum_t" "the thin LV's data after the merge: the snapshot's"
lvm_assert_clean "after the reverts" $vg
[[ -z $(snapsetctl --json list --sets) ]] || fail "the set outlived its last snapshot's merge"
step "ok: thin: unmounted by snapsetd, merged at once, the data the snapshot's; nothing left"

# --- break: ordinary LVs with new filesystem UUIDs, or nothing changed ----------------------------

lvcreate -qq -y -V 320M --thin -n x0 $vg/pool
mkfs.xfs -q /dev/$vg/x0
mnt_x=$(mount_tmp /dev/$vg/x0)
random_file "$mnt_x/data" 2
sum_x=$(sha "$mnt_x/data")
lvcreate -qq -y -L 16M -n sw $vg
mkswap -q /dev/$vg/sw >/dev/null
sync
# A set with a swap LV: its UUID is not one snapset can renew, so nothing changes.
snapset_create b "$mnt_t" /dev/$vg/sw
snapset_capture r snapsetctl break "$b_id"
assert_eq "$r_rc" 42 "break of a set with a swap LV (VSS_E_CANNOT_REVERT_DISKID)"
assert_contains "$r_err" "swap" "the refusal names what could not be renewed"
assert_eq "$(snapsetctl --json show "$b_id" | jq '.snapshots | length')" 2 "the set's snapshots after the refused break"
[[ -n $(lvm_snapset_lvs $vg) ]] || fail "the refused break changed the snapshot LVs"
assert_success snapsetctl delete "$b_id"

# Classic snapshots on 6.1 (thin LVs in a set of several): renewing the identity writes to
# the COW store (xfs_admin clears the whole log), so give it room.
snapset_create b "$mnt_t:cow-size=64M" "$mnt_x:cow-size=200M"
snapset_capture r snapsetctl break "$b_id"
((r_rc == 0)) || fail "break exited with $r_rc: $r_err"
mapfile -t broken <<<"$r_out"
assert_eq "${#broken[@]}" 2 "volumes broken off"
[[ -z $(lvm_snapset_lvs $vg) && $(lvs --noheadings -o lv_tags $vg) != *snapset* ]] || fail "snapset LVs or tags left after break: $(lvs -o lv_name,lv_tags $vg)"
[[ -z $(snapsetctl --json list --sets) ]] || fail "the broken set is still listed"
for dev in "${broken[@]}"; do
	[[ -b $dev ]] || fail "break gave $dev, which is not a block device"
	m=$(mount_tmp "$dev")   # beside its mounted origin: a UUID of its own (xfs refuses a duplicate)
	case $dev in
	*x0_snap_*) assert_eq "$(sha "$m/data")" "$sum_x" "the broken-off xfs volume's data" ;;
	*t0_snap_*) [[ -e $m/data ]] || fail "the broken-off ext4 volume has no data file" ;;
	*) fail "break gave an unexpected name: $dev" ;;
	esac
	echo written >"$m/new" || fail "$dev is not writable"
	umount "$m"
done
assert_ne "$(blkid -s UUID -o value "${broken[0]}")" "$(blkid -s UUID -o value /dev/$vg/t0)" "the broken-off ext4 volume's UUID against its origin's"
step "ok: break: ${broken[*]}: ordinary LVs without snapset's tags, new UUIDs, mounted beside their origins, writable; a swap LV in the set refused it with nothing changed"
