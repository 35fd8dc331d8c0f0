#!/bin/bash
# The dm-snapshot provider (daemon/providers/dm-snapshot.c) on real device-mapper, driven phase
# by phase by tests/vm/provider-driver.c the way the coordinator drives it, with the real freeze
# module around the window:
#   - ext4 and xfs: the snapshot shows the old data, the origin the new; a second snapshot of the
#     same origin shows its own instant; deleting the last snapshot gives the origin its table back;
#   - an abort in every state leaves no snapset-* device, no loop device, no COW file, the
#     origin's table as before and its data byte-identical;
#   - a COW directory too small: VSS_E_INSUFFICIENT_STORAGE at begin_prepare, nothing left;
#   - a COW directory inside the set: E_INVALIDARG naming CowDirectory= and the volume;
#   - a crash before and inside the window, then recover: origin resumed, everything gone;
#   - activation after the devices went away (as at a reboot), query, an overflowing store;
#   - the same round trip without udev (DM_DISABLE_UDEV=1).
. "$(dirname "$0")/../lib.sh"

require_cmd dmsetup mkfs.ext4 mkfs.xfs fsfreeze losetup
modprobe dm-snapshot
modprobe loop

# --- the driver ---------------------------------------------------------------

# A build of the tree: the VM's root is the host's, so it is where the harness ran from.
# SNAPSET_VM_BUILD, else BUILD= (or SRC=, for $SRC/build) in the harness's config. "make" builds
# the driver with everything else, so that an interface change breaks the build on the host.
driver=$(vm_build_dir)/provider-driver
[[ -x $driver ]] || fail "no provider driver at $driver: run make, or set SNAPSET_VM_BUILD"

# --- helpers -------------------------------------------------------------------

disk=$(scratch_disk 2)
scratch_wipe "$disk"
defer "scratch_wipe $disk"
# Two origins on the scratch disk: A (600 MiB, a filesystem) and B (64 MiB of raw data; small,
# because hashing it under TCG is slow).
a_len=$((600 * 2048))
b_len=$((64 * 2048))
A=$(dm_create t40a "0 $a_len linear $disk 0")
B=$(dm_create t40b "0 $b_len linear $disk $a_len")
table_a=$(dmsetup table t40a)
table_b=$(dmsetup table t40b)

# The COW directory: its own small file system, outside the set.
cowdev=$(loop_create 256M)
mkfs.ext4 -q "$cowdev"
cowmnt=$(mount_tmp "$cowdev")
cowdir=$cowmnt/cow
state=$SNAPSET_VM_TMP/state.json

suspended() { [[ $(dmsetup info "$1") == *"State:"*SUSPENDED* ]]; }

# Nothing of snapset left: no snapset-* dm device, no loop device on a COW file, no COW file,
# and the origins' tables as they were.
assert_clean() {
	local what=$1 left
	left=$(dmsetup ls | awk '$1 ~ /^snapset-/ { print $1 }')
	[[ -z $left ]] || fail "$what: dm devices left: $left"
	left=$(losetup -l -n -O NAME,BACK-FILE | grep -F "$cowmnt" || true)
	[[ -z $left ]] || fail "$what: loop devices left: $left"
	left=$(find "$cowmnt" -name '*.cow')
	[[ -z $left ]] || fail "$what: COW files left: $left"
	[[ $(dmsetup table t40a) == "$table_a" ]] || fail "$what: table of t40a changed: $(dmsetup table t40a)"
	[[ $(dmsetup table t40b) == "$table_b" ]] || fail "$what: table of t40b changed: $(dmsetup table t40b)"
	if suspended t40a || suspended t40b; then
		fail "$what: an origin is left suspended"
	fi
	step "ok: $what: no snapset device, loop device or COW file left; origin tables unchanged"
}

# Runs the driver; prints its output; returns its exit status.
drive() {
	local rc=0 out
	out=$("$driver" "$@" 2>&1) || rc=$?
	printf '%s\n' "$out" | sed 's/^/    driver: /' >&2
	printf '%s\n' "$out"
	return $rc
}

snap_dev() { awk -v o="$2" '$1 == "snapshot" && $4 == o { print $3 }' <<<"$1"; }

make_fs() {
	case $1 in
	ext4) mkfs.ext4 -q -F "$A" ;;
	xfs) mkfs.xfs -q -f "$A" ;;
	esac
}

mount_snapshot() {
	case $1 in
	ext4) mount_tmp "$2" ro ;;
	# Same filesystem UUID as the mounted origin: xfs needs nouuid.
	xfs) mount_tmp "$2" ro,nouuid ;;
	esac
}

# --- 1. round trips: ext4, xfs; a second snapshot; delete ----------------------

round_trip() {
	local fs=$1 mnt out s1 s2 m1 m2 old mid new
	step "--- round trip on $fs ---"
	make_fs "$fs"
	mnt=$(mount_tmp "$A")
	random_file "$mnt/data" 8
	echo one >"$mnt/marker"
	old=$(sha "$mnt/data")

	out=$(drive create --cow-dir "$cowdir" --cow-size $((32 << 20)) --state "$state.1" "$A")
	s1=$(snap_dev "$out" "$A")
	[[ -n $s1 ]] || fail "no snapshot device reported"
	assert_contains "$(dmsetup table t40a)" "snapshot-origin" "$fs origin table after the snapshot"
	assert_contains "$(dmsetup table "${s1#/dev/mapper/}")" " P 8" "$fs snapshot table (persistent, 4 KiB chunks)"
	[[ $(stat -c %s "$cowdir"/*.cow) == $((32 << 20)) ]] || fail "COW file size: $(ls -l "$cowdir")"
	step "ok: COW file preallocated: 32 MiB"

	dd if=/dev/urandom of="$mnt/data" bs=1M count=8 conv=notrunc,fsync status=none
	echo two >"$mnt/marker"
	sync
	mid=$(sha "$mnt/data")
	m1=$(mount_snapshot "$fs" "$s1")
	assert_eq "$(sha "$m1/data")" "$old" "$fs snapshot 1: data is the old data"
	assert_eq "$(cat "$m1/marker")" one "$fs snapshot 1: marker"
	assert_eq "$(sha "$mnt/data")" "$mid" "$fs origin: data is the new data"

	out=$(drive query --state "$state.1")
	assert_contains "$out" "invalid=no" "$fs query"
	[[ $(sed -n 's/.*cow=\([0-9]*\)\/.*/\1/p' <<<"$out") -gt 0 ]] || fail "query shows no COW use: $out"
	step "ok: $fs query shows COW use"

	step "a second snapshot of the same origin"
	out=$(drive create --cow-dir "$cowdir" --cow-size $((32 << 20)) --state "$state.2" "$A")
	s2=$(snap_dev "$out" "$A")
	[[ -n $s2 && $s2 != "$s1" ]] || fail "no second snapshot device"
	dd if=/dev/urandom of="$mnt/data" bs=1M count=8 conv=notrunc,fsync status=none
	echo three >"$mnt/marker"
	sync
	new=$(sha "$mnt/data")
	m2=$(mount_snapshot "$fs" "$s2")
	assert_eq "$(sha "$m2/data")" "$mid" "$fs snapshot 2: data of the second instant"
	assert_eq "$(cat "$m2/marker")" two "$fs snapshot 2: marker"
	assert_eq "$(sha "$m1/data")" "$old" "$fs snapshot 1: still the first instant"
	assert_eq "$(cat "$m1/marker")" one "$fs snapshot 1: marker still"
	assert_eq "$(sha "$mnt/data")" "$new" "$fs origin: the newest data"

	umount "$m1"
	out=$(drive delete --state "$state.1")
	assert_contains "$(dmsetup table t40a)" "snapshot-origin" "$fs origin after deleting snapshot 1 of 2"
	assert_eq "$(sha "$m2/data")" "$mid" "$fs snapshot 2 after deleting snapshot 1"
	umount "$m2"
	out=$(drive delete --state "$state.2")
	assert_eq "$(sha "$mnt/data")" "$new" "$fs origin data after deleting both snapshots"
	umount "$mnt"
	assert_clean "$fs: after deleting the last snapshot"
}

round_trip ext4
round_trip xfs

# --- 2. abort after every phase --------------------------------------------------

step "--- abort after every phase (a set of two: ext4 on t40a, raw data on t40b) ---"
make_fs ext4
mnt=$(mount_tmp "$A")
random_file "$mnt/data" 4
dd if=/dev/urandom of="$B" bs=1M count=64 oflag=direct status=none
sum_a=$(sha "$mnt/data")
sum_b=$(sha "$B")
# Every state the provider's abort can meet: nothing suspended (after begin_prepare; end_prepare
# only adds a udev cookie, and the freeze changes nothing of the provider's), the origin's
# inactive table loaded (pre_commit), origins suspended (hold), snapshots active while suspended
# (commit; release only resumes), and complete (post_commit). 61-set-failures aborts after every
# phase through the daemon.
for phase in begin_prepare pre_commit hold commit post_commit; do
	out=$(drive create --cow-dir "$cowdir" --abort-after "$phase" "$A" "$B")
	assert_contains "$out" "aborting after $phase" "abort after $phase"
	assert_contains "$out" "abort_snapshots: S_OK" "abort after $phase: abort_snapshots"
	assert_clean "abort after $phase"
	[[ $(sha "$mnt/data") == "$sum_a" && $(sha "$B") == "$sum_b" ]] || fail "abort after $phase: origin data changed"
	step "ok: abort after $phase: origin data byte-identical (ext4 file and raw device)"
done

# --- 3. COW store too small; COW directory inside the set ------------------------

step "--- a COW directory on a file system too small ---"
small=$(loop_create 24M)
mkfs.ext4 -q "$small"
smallmnt=$(mount_tmp "$small")
rc=0
out=$(drive create --cow-dir "$smallmnt" --cow-size $((64 << 20)) "$A" "$B") || rc=$?
assert_eq "$rc" 1 "driver exit status with a full COW directory"
assert_contains "$out" "begin_prepare_snapshot[0]: VSS_E_INSUFFICIENT_STORAGE" "code"
assert_contains "$out" "Not enough space in $smallmnt" "message names the directory"
assert_contains "$out" "64.0 MiB" "message names the size"
assert_clean "INSUFFICIENT_STORAGE"
[[ -z $(find "$smallmnt" -name '*.cow') ]] || fail "COW file left in $smallmnt"

step "--- a COW directory inside the set ---"
rc=0
out=$(drive create --cow-dir "$mnt/cow" "$A") || rc=$?
assert_eq "$rc" 1 "driver exit status with the COW directory on the origin"
assert_contains "$out" "E_INVALIDARG" "code"
assert_contains "$out" "CowDirectory=" "message says what to do"
assert_clean "COW directory inside the set"
rmdir "$mnt/cow" 2>/dev/null || true

# --- 4. crash, then recover ---------------------------------------------------------

for phase in end_prepare hold commit; do
	step "--- crash after $phase, then recover ---"
	rc=0
	out=$(drive create --cow-dir "$cowdir" --crash-after "$phase" --state "$state.crash" "$A" "$B") || rc=$?
	assert_eq "$rc" 3 "driver crashed after $phase"
	case $phase in
	hold | commit)
		suspended t40a || fail "t40a should be left suspended by a crash in the window"
		step "ok: crash after $phase left t40a suspended"
		;;
	esac
	out=$(drive recover --state "$state.crash")
	assert_contains "$out" "recover[1]: S_OK" "recover after a crash after $phase"
	# The coordinator's part of recovery: thaw what it froze.
	fsfreeze -u "$mnt" 2>/dev/null || true
	assert_clean "recover after a crash after $phase"
	out=$(drive recover --state "$state.crash")
	assert_contains "$out" "recover[0]: S_OK" "recover again (idempotent)"
	[[ $(sha "$mnt/data") == "$sum_a" && $(sha "$B") == "$sum_b" ]] || fail "crash after $phase: origin data changed"
	step "ok: crash after $phase + recover: origin data byte-identical"
done

# --- 5. activation (as after a reboot), overflow ------------------------------------

step "--- activation after the devices went away ---"
echo before >"$mnt/marker"
sync
out=$(drive create --cow-dir "$cowdir" --state "$state.act" "$A")
s=$(snap_dev "$out" "$A")
echo after >"$mnt/marker"
sync
# What a reboot does: every device-mapper device goes, and the origin comes back with its table
# as a new device that nothing has written yet (activation re-arms only such an origin; one
# written first is marked invalid instead, 69-dm-snapshot-reboot).
real=$(dmsetup ls | awk '$1 ~ /^snapset-real-/ { print $1 }')
umount "$mnt"
dmsetup remove --retry "${s#/dev/mapper/}"
dmsetup remove --retry t40a
dmsetup remove --retry "$real"
dmsetup create t40a --table "$table_a"
udevadm settle
[[ -z $(losetup -l -n -O NAME,BACK-FILE | grep -F "$cowmnt" || true) ]] || fail "loop device not autocleared"
step "ok: devices gone, loop device cleared with them (autoclear), COW file kept"
out=$(drive activate --state "$state.act")
assert_contains "$out" "activated" "activate"
out=$(drive activate --state "$state.act")
assert_contains "$out" "activate[0]: S_OK" "activate again (idempotent)"
mount /dev/mapper/t40a "$mnt"
echo later >"$mnt/marker"
sync
m=$(mount_snapshot ext4 "$s")
assert_eq "$(cat "$m/marker")" before "activated snapshot: marker of its instant"
umount "$m"
out=$(drive delete --state "$state.act")
assert_clean "delete after activation"

step "--- an overflowing COW store ---"
out=$(drive create --cow-dir "$cowdir" --cow-size $((8 << 20)) --state "$state.ovf" "$A")
dd if=/dev/urandom of="$mnt/big" bs=1M count=24 conv=fsync status=none
out=$(drive query --state "$state.ovf")
assert_contains "$out" "invalid=yes" "query of an overflowed snapshot"
rm -f "$mnt/big"
sync
[[ $(sha "$mnt/data") == "$sum_a" ]] || fail "origin data harmed by the overflow"
step "ok: the origin is unharmed by the overflow"
out=$(drive delete --state "$state.ovf")
assert_clean "delete of an invalid snapshot"

# --- 6. without udev -----------------------------------------------------------------

step "--- round trip with DM_DISABLE_UDEV=1 ---"
echo noudev >"$mnt/marker"
sync
out=$(DM_DISABLE_UDEV=1 drive create --cow-dir "$cowdir" --state "$state.noudev" "$A")
s=$(snap_dev "$out" "$A")
[[ -b $s ]] || fail "$s is not a block device"
echo changed >"$mnt/marker"
sync
m=$(mount_snapshot ext4 "$s")
assert_eq "$(cat "$m/marker")" noudev "snapshot without udev: marker"
umount "$m"
out=$(DM_DISABLE_UDEV=1 drive delete --state "$state.noudev")
udevadm settle
assert_clean "delete without udev"
