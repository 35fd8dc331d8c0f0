#!/bin/bash
# Stacks, understood: a filesystem on a device stacked on a volume of the set is frozen with the
# set, and a set never names two layers of one stack.
#   stack    t67-up (dm-linear) is stacked on t67-low, a volume of the set, and carries an ext4
#            filesystem; t67-b (xfs) is the set's other volume. A writer appends increasing
#            numbers to a file on each in turn while the set {t67-low, t67-b} is taken: the
#            snapshot of t67-low, read through a dm-linear device like t67-up, and the snapshot
#            of t67-b are a consistent cut (as in 60-set-consistency), so the filesystem on top
#            was frozen with the set.
#   layers   a set naming t67-low and t67-up is refused with E_INVALIDARG naming both, whichever
#            comes first, and nothing is left.
# c_out, c_err and c_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 mkfs.xfs jq losetup
modprobe dm-snapshot
modprobe loop

cowdir=$(snapset_cow_dir 128M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=16M"

loop=$(loop_create 64M)
low=$(dm_create t67-low "0 $(sectors "$loop") linear $loop 0")
up=$(dm_create t67-up "0 $(sectors "$low") linear $low 0")
mkfs.ext4 -q -F "$up"
up_mnt=$(mount_tmp "$up")
read -r b_dev b_mnt <<<"$(snapset_volume t67-b xfs 300M)"
snapset_remember_tables t67-low t67-up t67-b

blocks=$SNAPSET_VM_TMP/blocks
writer=$(seq_writer_start "$blocks" "$up_mnt/sequence" "$b_mnt/sequence")
sleep 1

# --- the filesystem on top is frozen with the set -----------------------------------------
step "--- snapsetctl --json create $low $b_dev (the filesystem is on $up, stacked on $low) ---"
snapset_create s "$low" "$b_dev"
id=$s_id
snap_low=$(jq -r --arg v "$low" '.snapshots[] | select(.volume == $v) | .device' <<<"$s_json")
snap_b=$(jq -r --arg v "$b_dev" '.snapshots[] | select(.volume == $v) | .device' <<<"$s_json")
# The upper layer of the snapshot: the same dm-linear table, on the snapshot of the lower one.
snap_up=$(dm_create t67-snap-up "0 $(sectors "$snap_low") linear $snap_low 0")
m1=$(mktemp -d "$SNAPSET_VM_TMP/snap.XXXXXX") m2=$(mktemp -d "$SNAPSET_VM_TMP/snap.XXXXXX")
defer "dmsetup remove t67-snap-up 2>/dev/null || true"
mount -o ro,noload "$snap_up" "$m1"
defer "umount $m1 2>/dev/null || true"
mount -o ro,nouuid,norecovery "$snap_b" "$m2"
defer "umount $m2 2>/dev/null || true"
n=$(seq_check_cut "$m1/sequence" "$m2/sequence") || fail "not a consistent cut: $n"
step "ok: the filesystem on $up (above the set's $low) and the one on $b_dev: last numbers $n, a consistent cut"
umount "$m1" "$m2"
dmsetup remove t67-snap-up
snapset_capture d snapsetctl delete "$id"
((d_rc == 0)) || fail "snapsetctl delete exited with $d_rc: $d_err"
seq_writer_stop "$writer"

# --- two layers of one stack --------------------------------------------------------------
for order in "$low $up" "$up $low"; do
	read -r first second <<<"$order"
	snapset_capture c snapsetctl create "$first" "$second"
	((c_rc != 0)) || fail "a set of $first and $second was created"
	assert_contains "$c_err" "E_INVALIDARG" "the code"
	assert_contains "$c_err" "stacked" "the message says why"
	assert_contains "$c_err" "$first" "the message names the volume already in the set"
	step "ok: $first then $second refused: $c_err"
done
snapset_assert_clean "at the end" "$cowdir" t67-low t67-up t67-b
fs_not_frozen "$up_mnt" "$b_mnt"
step "ok: nothing left, nothing frozen"
