# shellcheck shell=bash
# Helper library for the VM tests (tests/vm/tests/*). Source it first:
#
#   . /usr/lib/snapset-vm/lib.sh      # (or "$(dirname "$0")/../lib.sh")
#
# A test is a script; exit 0 = pass, 77 = skip, anything else = fail.
# It runs as root inside the VM, in a scratch working directory, with:
#   SNAPSET_VM_BOOT     1 on the first run; N+1 after the test called vm_reboot
#   SNAPSET_VM_TEST     the test's file name
#   SNAPSET_VM_RESULTS  the results share (the host reads it after the run)
#   SNAPSET_VM_TMP      the test's scratch directory (tmpfs, removed afterwards)
#
# What you get:
#   step MSG...                 print a timestamped progress line (goes into the log)
#   fail MSG... / skip MSG...   end the test as failed / skipped
#   assert_eq ACTUAL EXPECTED WHAT
#   assert_ne ACTUAL UNEXPECTED WHAT
#   assert_contains TEXT NEEDLE WHAT
#   assert_success CMD... / assert_failure CMD...
#   defer CMD...                run CMD when the test exits (last deferred runs first)
#   cleanup_now                 run the deferred commands now (between phases of a test)
#   loop_create SIZE            sparse file + loop device; prints /dev/loopN; removed on exit
#   dm_create NAME TABLE        dmsetup create; removed on exit (prints /dev/mapper/NAME)
#   mount_tmp DEV [OPTS]        mount DEV on a fresh directory; prints it; unmounted on exit
#   scratch_disk N              /dev/vda, /dev/vdb, ... (N = 0, 1, ...); skips if absent
#   scratch_wipe DEV...         erase signatures and the first MiB
#   random_file PATH MIB        write MIB MiB of random data, fsync it
#   sha FILE                    sha256 of FILE
#   vm_state_set KEY VALUE / vm_state_get KEY   state that survives vm_reboot
#   vm_reboot                   reboot the VM and run this test again with SNAPSET_VM_BOOT+1
#   require_cmd CMD...          skip when a command is missing
#
# Tests share the VM's scratch disks one after another: leave them as you found
# them (wiped). Disk use so far: 30-lvm vda+vdb, 90-reboot-persistence vdd.

set -Eeuo pipefail

: "${SNAPSET_VM_BOOT:=1}"
: "${SNAPSET_VM_TEST:=$(basename "$0")}"
: "${SNAPSET_VM_RESULTS:=/run/snapset-vm/results}"
if [[ -z ${SNAPSET_VM_TMP:-} ]]; then
	# Run by hand (e.g. from tests/vm/run --shell): make our own scratch dir.
	SNAPSET_VM_TMP=$(mktemp -d "/tmp/${SNAPSET_VM_TEST}.XXXXXX")
	_lib_own_tmp=1
fi
export SNAPSET_VM_BOOT SNAPSET_VM_TEST SNAPSET_VM_RESULTS SNAPSET_VM_TMP

_lib_t0=$(date +%s.%N)

step() {
	local now
	now=$(date +%s.%N)
	awk -v a="$_lib_t0" -v b="$now" -v m="$*" 'BEGIN { printf "[%6.1fs] %s\n", b - a, m }'
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

skip() {
	echo "SKIP: $*"
	exit 77
}

# Name the command and line that failed under set -e, so a log says more than
# "exit 1".
_lib_on_err() {
	local rc=$? cmd=$BASH_COMMAND line=${BASH_LINENO[0]}
	echo "FAIL: '$cmd' exited with $rc (${BASH_SOURCE[1]:-?} line $line)" >&2
}
trap _lib_on_err ERR

assert_eq() {
	local actual=$1 expected=$2 what=${3:-value}
	[[ $actual == "$expected" ]] || fail "$what: expected '$expected', got '$actual'"
	step "ok: $what = '$expected'"
}

assert_ne() {
	local actual=$1 unexpected=$2 what=${3:-value}
	[[ $actual != "$unexpected" ]] || fail "$what: should not be '$unexpected'"
	step "ok: $what != '$unexpected'"
}

assert_contains() {
	local text=$1 needle=$2 what=${3:-text}
	[[ $text == *"$needle"* ]] || fail "$what does not contain '$needle'; it is: $text"
	step "ok: $what contains '$needle'"
}

assert_success() {
	local out rc=0
	out=$("$@" 2>&1) || rc=$?
	((rc == 0)) || fail "'$*' exited with $rc: $out"
	step "ok: '$*' succeeded"
}

assert_failure() {
	local rc=0
	"$@" >/dev/null 2>&1 || rc=$?
	((rc != 0)) || fail "'$*' succeeded but should have failed"
	step "ok: '$*' failed as expected ($rc)"
}

# --- cleanup stack ------------------------------------------------------------

# Kept in a file, not an array: helpers like loop_create are called as
# dev=$(loop_create ...), i.e. in a subshell, and must still register their
# cleanup with the test.
_lib_deferred_file=$SNAPSET_VM_TMP/.deferred
: >"$_lib_deferred_file"

defer() {
	printf '%s\n' "$*" >>"$_lib_deferred_file"
}

# Run every deferred command now, last first, and forget them. Runs at exit
# anyway; call it to tear down between phases of one test. A failing cleanup
# does not stop the others nor change the test's result, but is shown.
cleanup_now() {
	local c out
	while IFS= read -r c; do
		[[ -n $c ]] || continue
		out=$(eval "$c" 2>&1) || echo "cleanup: '$c' failed: $out" >&2
	done < <(tac "$_lib_deferred_file")
	: >"$_lib_deferred_file"
}

_lib_on_exit() {
	local rc=$?
	trap - ERR
	cleanup_now
	[[ -n ${_lib_own_tmp:-} ]] && rm -rf "$SNAPSET_VM_TMP"
	exit "$rc"
}
trap _lib_on_exit EXIT

# --- devices ------------------------------------------------------------------

loop_create() {
	local size=$1 file dev
	file=$(mktemp "$SNAPSET_VM_TMP/loop.XXXXXX")
	truncate -s "$size" "$file"
	dev=$(losetup --find --show "$file")
	defer "losetup -d $dev; rm -f $file"
	echo "$dev"
}

# Size of a block device in 512-byte sectors (what dm tables count in).
sectors() {
	blockdev --getsz "$1"
}

dm_create() {
	local name=$1 table=$2
	dmsetup create "$name" --table "$table"
	# --retry: udev's blkid may still hold the device open for a moment.
	defer "dmsetup remove --retry $name"
	udevadm settle
	echo "/dev/mapper/$name"
}

mount_tmp() {
	local dev=$1 opts=${2:-} dir
	dir=$(mktemp -d "$SNAPSET_VM_TMP/mnt.XXXXXX")
	mount ${opts:+-o "$opts"} "$dev" "$dir"
	defer "umount $dir"
	echo "$dir"
}

scratch_disk() {
	local letters=(a b c d e f g h i j k l m n o p) dev
	dev=/dev/vd${letters[$1]}
	[[ -b $dev ]] || skip "scratch disk $dev is not there (the harness gives SNAPSET_VM_DISKS=4 by default)"
	echo "$dev"
}

scratch_wipe() {
	local dev
	for dev in "$@"; do
		wipefs -qa "$dev"
		dd if=/dev/zero of="$dev" bs=1M count=1 oflag=direct status=none
	done
	udevadm settle
}

random_file() {
	local path=$1 mib=$2
	dd if=/dev/urandom of="$path" bs=1M count="$mib" conv=fsync status=none
}

sha() {
	sha256sum "$1" | cut -d' ' -f1
}

require_cmd() {
	local c
	for c in "$@"; do
		command -v "$c" >/dev/null || skip "$c is not installed in the VM (tests/vm/setup-deps should install it)"
	done
}

# --- across reboots -----------------------------------------------------------

_lib_state_dir() {
	local d=$SNAPSET_VM_RESULTS/$SNAPSET_VM_TEST.state
	mkdir -p "$d"
	echo "$d"
}

vm_state_set() {
	printf '%s' "$2" >"$(_lib_state_dir)/$1"
	sync
}

vm_state_get() {
	local f
	f=$(_lib_state_dir)/$1
	[[ -e $f ]] || fail "no state '$1' saved by an earlier boot of $SNAPSET_VM_TEST"
	cat "$f"
}

# Ask for a reboot: the runner powers the VM off, the harness boots it again on
# the same disk images, and this test runs again with SNAPSET_VM_BOOT+1.
# Deferred cleanups run first (e.g. unmount), so defer nothing that destroys
# what the next boot must find.
vm_reboot() {
	step "requesting a reboot (this was boot $SNAPSET_VM_BOOT of this test)"
	[[ -d $SNAPSET_VM_RESULTS ]] || fail "vm_reboot needs the results share $SNAPSET_VM_RESULTS (run by the harness)"
	sync
	touch "$SNAPSET_VM_RESULTS/$SNAPSET_VM_TEST.reboot"
	exit 0
}
