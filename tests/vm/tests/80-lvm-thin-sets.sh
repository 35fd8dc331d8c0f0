#!/bin/bash
# vm-kernels: all
# The volumes Linux users have, in one set at one instant, through the real daemon: LVM classic
# LVs, LVM thin LVs, a thin volume of a pool LVM does not manage (dm-thin) and a plain dm device
# (dm-snapshot), ext4 and xfs, taken while a writer appends sequence numbers to each volume in
# turn (lib.sh, seq_writer_start: why that proves one instant).
#   1. one set of all four kinds: a consistent cut, a file written before the set byte-identical
#      in every snapshot, every origin's device node still there, lvs and dmsetup showing exactly
#      the set's snapshots, how each was made
#      (kind, note), the thin pools' transaction ids agreeing (kernel vs LVM), and nothing left
#      after the delete;
#   2. the same with 16 LVs (8 classic, 8 thin) across two volume groups (which run in
#      parallel): a consistent cut, and the freeze window and hold snapsetd reports, printed as
#      "FREEZE WINDOW" lines (TCG: compare only within one run).
#      SNAPSET_VM_LVM_MATRIX=full adds sets of 1, 4 and 16 LVs, classic and thin each in sets
#      of their own (about three times as long; for measurements). A thin LV alone is also
#      test 84's.
# On Linux 6.1 the thin LVs of a multi-volume set get classic snapshots (the freezes do not
# nest); from 6.8 native thin ones (snapsetd(8), "LVM volumes").
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvm dmsetup mkfs.ext4 mkfs.xfs jq
modprobe dm-snapshot
modprobe dm-thin-pool

nests=no
kernel_at_least 6.8 && nests=yes
step "kernel $(uname -r): FIFREEZE and LVM's freeze nest: $nests (expected from the version; snapsetd probes it)"

cowdir=$(snapset_cow_dir 256M)
# 16 LVs in two VGs take a few seconds per VG under TCG: a hold timeout for that, scaled.
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=8M
[Limits]
FlushTimeoutSec=$(scaled 20)
HoldTimeoutSec=$(scaled 60 | awk '{ print ($1 > 120) ? 120 : $1 }')"

# --- storage: two VGs with 4 (full: 8) classic and as many thin LVs each ------------------------

lvm_vg snap80a "$(scratch_disk 0)"
lvm_vg snap80b "$(scratch_disk 1)"
declare -A mnt fixed
full=${SNAPSET_VM_LVM_MATRIX:-}
per_vg=4
[[ $full == full ]] && per_vg=8
make_lvs() {
	local vg=$1 i
	lvcreate -qq -y --type thin-pool -L 300M -n pool "$vg"
	for ((i = 0; i < per_vg; i++)); do
		lvcreate -qq -y -L 24M -n "c$i" "$vg"
		lvcreate -qq -y -V 24M --thin -n "t$i" "$vg/pool"
	done
}
# The two VGs at once (each has its own lock), and the filesystems likewise: under TCG every
# command costs a process start, and there are two CPUs.
make_lvs snap80a &
make_lvs snap80b
wait
# One thin LV with xfs (its minimum is 300 MB: a thin LV may be larger than its pool's use).
lvcreate -qq -y -V 320M --thin -n x0 snap80a/pool
udevadm settle
for dev in /dev/snap80a/[ctx]* /dev/snap80b/[ct]*; do
	case $(basename "$dev") in
	x*) mkfs.xfs -q -f "$dev" ;;
	*) mkfs.ext4 -q -F "$dev" ;;
	esac &
done
wait
for dev in /dev/snap80a/[ctx]* /dev/snap80b/[ct]*; do
	mnt[$dev]=$(mount_tmp "$dev")
	dd if=/dev/urandom of="${mnt[$dev]}/fixed" bs=64K count=4 status=none
done
sync
for dev in "${!mnt[@]}"; do
	fixed[$dev]=$(sha "${mnt[$dev]}/fixed")
done

# A thin pool LVM does not manage, and a plain dm-linear device.
meta=$(loop_create 16M)
data=$(loop_create 256M)
dmthin_pool=$(dm_create t80-pool "0 $(sectors "$data") thin-pool $meta $data 128 0")
dmsetup message t80-pool 0 "create_thin 0"
dmthin=$(dm_create t80-thin "0 $((128 * 2048)) thin $dmthin_pool 0")
defer "dmsetup message t80-pool 0 'delete 0' 2>/dev/null || true"
mkfs.ext4 -q "$dmthin"
read -r linear lmnt <<<"$(snapset_volume t80-linear xfs 320M)"
mnt[$dmthin]=$(mount_tmp "$dmthin")
mnt[$linear]=$lmnt
for dev in "$dmthin" "$linear"; do
	random_file "${mnt[$dev]}/fixed" 1
	fixed[$dev]=$(sha "${mnt[$dev]}/fixed")
done
sync
step "storage: 2 VGs x ($per_vg classic + $per_vg thin LVs), an xfs thin LV, a dm-thin volume, a dm-linear xfs volume"

# --- one set, checked --------------------------------------------------------------

blocks=$SNAPSET_VM_TMP/blocks

# take_set LABEL DEV...: a set of the DEVs under a writer; checks the cut, the fixed files, the
# snapshots lvs and dmsetup show; leaves the set's JSON in $set_json.
take_set() {
	local label=$1 writer t0 t1 id win hold blk smnt dev i sdev files=() opts expect_lvm expect_dm
	shift
	local devs=("$@")
	local paths=()
	for dev in "${devs[@]}"; do
		paths+=("${mnt[$dev]}/sequence")
		rm -f "${mnt[$dev]}/sequence"
	done
	writer=$(seq_writer_start "$blocks" "${paths[@]}")
	sleep 1
	t0=$(now_usec)
	snapset_capture c snapsetctl --timeout="$(scaled 120)" --json create "${devs[@]}"
	t1=$(now_usec)
	sleep 0.5
	seq_writer_stop "$writer"
	((c_rc == 0)) || fail "$label: snapsetctl create exited with $c_rc: $c_err"
	set_json=$c_out
	id=$(jq -r .id <<<"$set_json")
	defer "snapsetctl delete $id >/dev/null 2>&1 || true"
	win=$(jq -r .freezeWindowUsec <<<"$set_json")
	hold=$(jq -r .holdUsec <<<"$set_json")
	[[ $win =~ ^[0-9]+$ && $hold =~ ^[0-9]+$ ]] || fail "$label: no freeze window in the reply: $set_json"
	blk=$(seq_max_block "$blocks" "$t0" "$t1")
	# The origins keep their device nodes (udev saw every resume as snapset's).
	udevadm settle
	for dev in "${devs[@]}"; do
		[[ -b $dev ]] || fail "$label: $dev is gone after the set (udev dropped its node)"
	done
	printf 'FREEZE WINDOW [%s] %-28s %2d volume(s): freezeWindowUsec=%d holdUsec=%d; writer blocked at most %d us; call %d ms\n' \
		"$(uname -r | cut -d- -f1)" "$label" "${#devs[@]}" "$win" "$hold" "$blk" $(((t1 - t0) / 1000)) |
		tee -a "$SNAPSET_VM_TMP/windows"

	# What lvs and dmsetup show: exactly this set's snapshots.
	expect_lvm=$(jq -r '.snapshots[] | select(.provider == "lvm") | .device' <<<"$set_json" | xargs -rn1 basename | sort)
	[[ $({ lvm_snapset_lvs snap80a; lvm_snapset_lvs snap80b; } | sort) == "$expect_lvm" ]] ||
		fail "$label: lvs shows snapset LVs $(lvm_snapset_lvs snap80a; lvm_snapset_lvs snap80b), the set has $expect_lvm"
	expect_dm=$(jq -r '.snapshots[] | select(.provider != "lvm") | .device' <<<"$set_json" | xargs -rn1 basename | sort)
	# (dm-snapshot's snapset-real-* devices are its internal layers, not snapshots.)
	[[ $(dmsetup ls | awk '$1 ~ /^snapset-/ && $1 !~ /^snapset-real-/ { print $1 }' | sort) == "$expect_dm" ]] ||
		fail "$label: dmsetup shows $(dmsetup ls | awk '$1 ~ /^snapset-/ { print $1 }'), the set has $expect_dm"
	lvm_pool_tids_agree snap80a pool
	lvm_pool_tids_agree snap80b pool

	for dev in "${devs[@]}"; do
		sdev=$(jq -r --arg v "$dev" '.snapshots[] | select(.volume == $v) | .device' <<<"$set_json")
		[[ -b $sdev ]] || fail "$label: no snapshot device for $dev: $set_json"
		case $(blkid -o value -s TYPE "$sdev") in
		xfs) opts=ro,nouuid,norecovery ;;
		*) opts=ro,noload ;;
		esac
		smnt=$(mktemp -d "$SNAPSET_VM_TMP/snap.XXXXXX")
		mount -o "$opts" "$sdev" "$smnt"
		defer "! mountpoint -q $smnt || umount $smnt"
		[[ $(sha "$smnt/fixed") == "${fixed[$dev]}" ]] || fail "$label: $dev: the file written before the set differs in the snapshot"
		files+=("$smnt/sequence")
	done
	i=$(seq_check_cut "${files[@]}") || fail "$label: $i"
	step "ok: $label: a consistent cut (last numbers in writer order: $i); files written before byte-identical; lvs/dmsetup show exactly the set's snapshots; thin pool transaction ids agree"
	for f in "${files[@]}"; do umount "$(dirname "$f")"; done
}

delete_set() {
	local label=$1 id
	id=$(jq -r .id <<<"$set_json")
	# 16 LVs: one lvremove each, about a second under TCG, more than snapsetctl's default 30 s
	# on a busy host.
	snapset_capture d snapsetctl --timeout="$(scaled 120)" delete "$id"
	((d_rc == 0)) || fail "$label: snapsetctl delete exited with $d_rc: $d_err"
	lvm_assert_clean "$label: after delete" snap80a snap80b
	step "ok: $label: deleted; no snapshot LV or device left, nothing suspended, transaction ids agree"
}

kind_of() {
	jq -r --arg v "$1" '.snapshots[] | select(.volume == $v) | .kind' <<<"$set_json"
}

# --- 1. four kinds in one set -----------------------------------------------------

take_set "four kinds" /dev/snap80a/x0 /dev/snap80a/c0 "$dmthin" "$linear"
assert_eq "$(kind_of /dev/snap80a/c0)" classic "the classic LV's snapshot"
assert_eq "$(kind_of "$dmthin")" thin "the dm-thin volume's snapshot"
assert_eq "$(kind_of "$linear")" classic "the dm-linear volume's snapshot"
assert_eq "$(jq -r '.snapshots[] | select(.volume == "'"$dmthin"'") | .provider' <<<"$set_json")" dm-thin "provider of the dm-thin volume"
assert_eq "$(jq -r '.snapshots[] | select(.volume == "'"$linear"'") | .provider' <<<"$set_json")" dm-snapshot "provider of the dm-linear volume"
if [[ $nests == yes ]]; then
	assert_eq "$(kind_of /dev/snap80a/x0)" thin "the thin LV's snapshot on a kernel whose freezes nest"
else
	assert_eq "$(kind_of /dev/snap80a/x0)" classic "the thin LV's snapshot on a kernel whose freezes do not nest"
	assert_contains "$(jq -r '.snapshots[] | select(.volume == "/dev/snap80a/x0") | .note' <<<"$set_json")" \
		"classic (copy-on-write) snapshot of a thin volume" "the note on the thin LV's snapshot"
	assert_contains "$(snapsetctl list)" "classic" "snapsetctl list"
fi
delete_set "four kinds"

# --- 2. 16 LVs in two VGs, and (full) 1, 4 and 16 LVs of each kind ---------------------

take_set "16 LVs (8 classic, 8 thin), 2 VGs" /dev/snap80a/[ct]{0..3} /dev/snap80b/[ct]{0..3}
[[ $nests == no ]] && expect=classic || expect=classic,thin
assert_eq "$(jq -r '[.snapshots[].kind] | unique | join(",")' <<<"$set_json")" "$expect" "kinds of the 16 snapshots"
delete_set "16 LVs, 2 VGs"

if [[ $full == full ]]; then
	for kind in c t; do
		name=classic
		[[ $kind == t ]] && name=thin
		take_set "1 $name LV" "/dev/snap80a/${kind}0"
		delete_set "1 $name LV"
		take_set "4 $name LVs" /dev/snap80a/${kind}{0..3}
		delete_set "4 $name LVs"
		take_set "16 $name LVs, 2 VGs" /dev/snap80a/${kind}{0..7} /dev/snap80b/${kind}{0..7}
		[[ $name == thin && $nests == no ]] && expect=classic || expect=$name
		assert_eq "$(jq -r '[.snapshots[].kind] | unique | join(",")' <<<"$set_json")" "$expect" "kind of the 16 snapshots"
		delete_set "16 $name LVs, 2 VGs"
	done
fi

for dev in "${!mnt[@]}"; do
	fs_not_frozen "${mnt[$dev]}"
done
step "ok: every origin writable at the end"
echo "--- freeze windows (snapsetd's numbers; TCG: compare only within this run) ---"
cat "$SNAPSET_VM_TMP/windows"
