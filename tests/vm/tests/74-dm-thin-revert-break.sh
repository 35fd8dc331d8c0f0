#!/bin/bash
# Revert and break through the dm-thin provider (a thin pool LVM does not manage), on an ext4 of
# thin device 7 of a pool:
#   - revert while the volume is mounted: VSS_E_VOLUME_IN_USE (exit 37), nothing changed;
#   - revert --force-dismount: the volume holds the snapshot's bytes again, under the same table
#     (thin id 7: what sets it up at boot still finds it); the snapshot and its device are gone;
#   - break: the snapshot is /dev/mapper/VOLUME_snap_XXXXXXXX, without snapset's dm UUID, with a
#     new filesystem UUID, mounted beside its origin with the data of the point in time; snapset
#     no longer lists it;
#   - a revert whose snapsetd is killed past its point of no return (kill=revert-committed) is
#     finished by the snapsetd systemd starts again.
# x_out, x_err and x_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 blkid jq
modprobe dm-thin-pool

meta=$(loop_create 8M)
data=$(loop_create 128M)
pool=$(dm_create t74-pool "0 $(sectors "$data") thin-pool $meta $data 128 0")
dmsetup message t74-pool 0 "create_thin 7"
vol=$(dm_create t74-vol "0 $((64 * 2048)) thin $pool 7")
mkfs.ext4 -q "$vol"
mnt=$(mount_tmp "$vol")
random_file "$mnt/data" 2
sum0=$(sha "$mnt/data")
table=$(dmsetup table t74-vol)
step "volume $vol (thin device 7 of t74-pool), ext4, 2 MiB of data: $sum0"

# --- revert ---------------------------------------------------------------------------------------

snapset_create r --provider=dm-thin "$vol"
snap=$(jq -r '.snapshots[0].id' <<<"$r_json")
random_file "$mnt/data" 2
[[ $(sha "$mnt/data") != "$sum0" ]] || fail "the data did not change (the test proves nothing)"

snapset_capture x snapsetctl revert "$snap"
assert_eq "$x_rc" 37 "revert of a mounted dm-thin volume (stderr: $x_err)"
assert_contains "$x_err" "is open" "the refusal"
snapsetctl show "$snap" >/dev/null || fail "the snapshot is gone after a refused revert"

snapset_capture x snapsetctl revert --force-dismount "$snap"
assert_eq "$x_rc" 0 "revert --force-dismount (stderr: $x_err)"
assert_eq "$(dmsetup table t74-vol)" "$table" "the volume's table after the revert"
if snapsetctl show "$snap" >/dev/null 2>&1; then fail "the snapshot is still listed after the revert"; fi
left=$(dmsetup ls | awk '$1 ~ /^snapset-/ { print $1 }')
[[ -z $left ]] || fail "snapshot devices left after the revert: $left"
mnt=$(mount_tmp "$vol")
assert_eq "$(sha "$mnt/data")" "$sum0" "the volume's data after the revert"

# --- a revert cut short ----------------------------------------------------------------------------
# snapsetd is killed right after recording the revert, past the step that cannot be undone (X is on
# an error table, snapset-S removed); systemd starts it again, and it finishes the revert.

snapset_create k --provider=dm-thin "$vol"
ksnap=$(jq -r '.snapshots[0].id' <<<"$k_json")
ksum=$(sha "$mnt/data")
random_file "$mnt/data" 2
umount "$mnt"
snapset_hooks kill=revert-committed
snapset_capture x snapsetctl revert "$ksnap"
[[ $x_rc != 0 ]] || fail "the revert answered although snapsetd was to be killed: $x_out"
for _ in $(seq "$(scaled 30)"); do
	snapsetctl show "$ksnap" >/dev/null 2>&1 || break
	sleep 1
done
if snapsetctl show "$ksnap" >/dev/null 2>&1; then fail "the cut-short revert was not finished: $(snapsetctl show "$ksnap")"; fi
snapset_hooks ""
assert_eq "$(dmsetup table t74-vol)" "$table" "the volume's table after the finished revert"
left=$(dmsetup ls | awk '$1 ~ /^snapset-/ { print $1 }')
[[ -z $left ]] || fail "snapshot devices left after the finished revert: $left"
mnt=$(mount_tmp "$vol")
assert_eq "$(sha "$mnt/data")" "$ksum" "the volume's data after the finished revert"
step "ok: a revert cut short by a crash is finished by the next snapsetd"

# --- break ----------------------------------------------------------------------------------------

snapset_create b --provider=dm-thin "$vol"
random_file "$mnt/data" 1
snapset_capture x snapsetctl break "$b_id"
assert_eq "$x_rc" 0 "break (stderr: $x_err)"
dev=$(tail -n 1 <<<"$x_out")
name=${dev#/dev/mapper/}
[[ $name == t74-vol_snap_* && -b $dev ]] || fail "break printed '$x_out', not a t74-vol_snap_* device"
defer "dmsetup remove --retry $name"
assert_eq "$(dmsetup info -c --noheadings -o uuid "$name")" "" "the broken-off device's dm UUID"
[[ $(blkid -s UUID -o value "$dev") != "$(blkid -s UUID -o value "$vol")" ]] ||
	fail "the broken-off filesystem kept its origin's UUID"
bmnt=$(mount_tmp "$dev")
assert_eq "$(sha "$bmnt/data")" "$sum0" "the data of the broken-off volume"
if snapsetctl show "$b_id" >/dev/null 2>&1; then fail "snapset still lists the broken set"; fi
