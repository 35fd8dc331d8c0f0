#!/bin/bash
# Not enough space is found before anything is frozen, and said with the numbers:
#   - an LVM thin pool whose data is full enough, a dm-thin pool likewise, and a dm-thin pool
#     whose metadata ran out: VSS_E_INSUFFICIENT_STORAGE at preparation, naming the pool and
#     how much of it is in use;
#   - a volume group without the extents for a classic snapshot's copy-on-write LV: the same,
#     naming the group, what is free and what was needed;
#   - after each refusal nothing is left (no snapset LV or device, nothing suspended), the thin
#     pools' transaction ids agree (kernel vs LVM), and /etc/lvm did not change (no archive, the
#     backup still current);
#   - after a set that succeeds: no archive was written for it (-An inside the window), and the
#     backup is current again (vgcfgbackup after the thaw).
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvm dmsetup mkfs.ext4 jq
modprobe dm-thin-pool

cowdir=$(snapset_cow_dir 64M)
snapset_conf "[Storage]
CowDirectory=$cowdir"

vg=snap81
lvm_vg $vg "$(scratch_disk 0)"

archives() { ls /etc/lvm/archive/${vg}_* 2>/dev/null | wc -l; }
backup_current() {
	local seq file
	seq=$(vgs --noheadings -o vg_seqno $vg | tr -d ' ')
	file=$(sed -n 's/^[[:space:]]*seqno = \([0-9]*\)/\1/p' /etc/lvm/backup/$vg | head -n 1)
	[[ $seq == "$file" ]] || fail "/etc/lvm/backup/$vg has seqno $file, the VG is at $seq"
}

# expect_refusal LABEL VSSNAME NEEDLE... VOLUME...: snapsetctl create refuses with that code, its
# message contains every NEEDLE (until "--"), and nothing is left.
expect_refusal() {
	local label=$1 code=$2 needles=() a before
	shift 2
	while [[ $1 != -- ]]; do needles+=("$1"); shift; done
	shift
	before=$(archives)
	snapset_capture r snapsetctl --json create "$@"
	((r_rc != 0)) || fail "$label: the set was created: $r_out"
	assert_eq "$(jq -r .vssName <<<"$r_out")" "$code" "$label: the error"
	for a in "${needles[@]}"; do
		assert_contains "$(jq -r .message <<<"$r_out")" "$a" "$label: the message"
	done
	step "$label: $(jq -r .message <<<"$r_out")"
	lvm_assert_clean "$label" $vg
	assert_eq "$(archives)" "$before" "$label: archive files in /etc/lvm/archive"
	backup_current
}

vgcfgbackup -q $vg >/dev/null

# --- an LVM thin pool that is full enough -------------------------------------------

lvcreate -qq -y --type thin-pool -L 64M -n pool $vg
lvchange -qq --errorwhenfull y $vg/pool
lvcreate -qq -y -V 128M --thin -n raw $vg/pool
# A raw volume (no filesystem to freeze): filled to just under the pool's size.
dd if=/dev/urandom of=/dev/$vg/raw bs=1M count=62 oflag=direct status=none
step "LVM pool: $(lvs --noheadings -o data_percent $vg/pool | tr -d ' ')% data in use"
expect_refusal "LVM thin pool full" VSS_E_INSUFFICIENT_STORAGE "$vg/pool" "% of its data space in use" "blocks" -- /dev/$vg/raw
lvremove -qq -f $vg/raw $vg/pool

# --- a VG without room for a copy-on-write LV ---------------------------------------

lvcreate -qq -y -L 128M -n data $vg
mkfs.ext4 -q /dev/$vg/data
dmnt=$(mount_tmp /dev/$vg/data)
echo before >"$dmnt/f"
lvcreate -qq -y -l 100%FREE -n filler $vg
expect_refusal "VG full" VSS_E_INSUFFICIENT_STORAGE "Volume group $vg has" "free" "need" -- /dev/$vg/data
lvremove -qq -f $vg/filler
fs_not_frozen "$dmnt"

# And now the same volume succeeds: no archive for the set's own commands, the backup current.
before=$(archives)
snapset_capture ok snapsetctl --json create /dev/$vg/data
((ok_rc == 0)) || fail "a set with room failed: $ok_err"
id=$(jq -r .id <<<"$ok_out")
assert_eq "$(archives)" "$((before + 1))" "archive files after the set (one, for the COW LV made before the window; none from inside it)"
backup_current
step "ok: /etc/lvm: the window wrote no archive, and the backup is current after the thaw"
snapsetctl delete "$id" >/dev/null
lvm_assert_clean "after the delete" $vg

# --- dm-thin pools: data full, and metadata exhausted -----------------------------

meta=$(loop_create 8M)
data=$(loop_create 64M)
pool=$(dm_create t81-pool "0 $(sectors "$data") thin-pool $meta $data 128 0 1 error_if_no_space")
dmsetup message t81-pool 0 "create_thin 0"
raw=$(dm_create t81-raw "0 $((128 * 2048)) thin $pool 0")
dd if=/dev/urandom of="$raw" bs=1M count=62 oflag=direct status=none
step "dm-thin pool: $(dmsetup status t81-pool)"
expect_refusal "dm-thin pool full" VSS_E_INSUFFICIENT_STORAGE "t81-pool" "% of its data space in use" -- "$raw"

# Metadata: a pool with a tiny metadata device (64 blocks), filled with thin devices (each takes
# a block for the root of its mappings) until the pool refuses more. Its devices go with the
# pool's loop devices at the end.
meta2=$(loop_create 256K)
data2=$(loop_create 64M)
pool2=$(dm_create t81-mpool "0 $(sectors "$data2") thin-pool $meta2 $data2 128 0")
n=0
while ((n < 2000)) && dmsetup message t81-mpool 0 "create_thin $n" 2>/dev/null; do
	n=$((n + 1))
done
step "dm-thin pool after $n thin devices: $(dmsetup status t81-mpool)"
mraw=$(dm_create t81-mraw "0 2048 thin $pool2 0")
expect_refusal "dm-thin metadata exhausted" VSS_E_INSUFFICIENT_STORAGE "t81-mpool" "metadata" -- "$mraw"
