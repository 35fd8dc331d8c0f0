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
#   SNAPSET_VM_SLOWNESS how much slower than an unloaded machine this VM runs now (>= 1);
#                       scale every time limit a test sets with scaled SECONDS
#   SNAPSET_VM_KERNEL_SUITE  bookworm or bookworm-backports: whose kernel this is
#
# A test that says "# vm-kernels: all" in its first lines runs on every kernel of the harness
# (6.1 and 6.12); the others only on the first (6.1).
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
#   vm_src_dir / vm_build_dir   the source tree and the build of it the harness ran from (the
#                               VM's root is the host's): SNAPSET_VM_SRC/SNAPSET_VM_BUILD, else
#                               the harness's config (BUILD=, or SRC=/build)
#
# Tests share the VM's scratch disks one after another: leave them as you found
# them (wiped). Disk use so far: 30-lvm vda+vdb, 62-set-contexts vdd, 69-dm-snapshot-reboot vdc,
# 75-dm-snapshot-revert-break vdc.

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
: "${SNAPSET_VM_SLOWNESS:=1}"

# SECONDS times the VM's slowness, rounded up: for every limit a test sets itself (a hold
# timeout in snapsetd.conf, a wait loop), so that a loaded host gives slow passes.
scaled() {
	awk -v s="$1" -v f="$SNAPSET_VM_SLOWNESS" 'BEGIN { v = s * f; printf "%d", (v == int(v)) ? v : int(v) + 1 }'
}

# Whether the running kernel is at least MAJOR.MINOR (for reporting what a kernel does; the
# daemon itself probes behaviour rather than versions).
kernel_at_least() {
	local v
	v=$(uname -r | cut -d- -f1)
	printf '%s\n%s\n' "$1" "$v" | sort -V -C
}

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

vm_src_dir() {
	local src=${SNAPSET_VM_SRC:-}
	[[ -n $src || ! -r /run/snapset-vm/config ]] || src=$(. /run/snapset-vm/config && echo "${SRC:-}")
	echo "$src"
}

vm_build_dir() {
	local build=${SNAPSET_VM_BUILD:-}
	[[ -n $build || ! -r /run/snapset-vm/config ]] || build=$(. /run/snapset-vm/config && echo "${BUILD:-}")
	[[ -n $build ]] || build=$(vm_src_dir)/build
	echo "$build"
}

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

# --- snapsetd through systemd (the 6x tests) ----------------------------------
#
#   snapset_conf TEXT           /etc/snapset/snapsetd.conf := TEXT, restart snapsetd (both undone at exit)
#   snapset_restart             restart snapsetd.service and wait until it answers
#   snapset_hooks VALUE         test hooks for the sets from now on (SNAPSETD_TEST_HOOKS syntax; "": none; undone at exit); restarts snapsetd only the first time
#   snapset_cow_dir SIZE        a fresh ext4 on a loop device, mounted; prints a directory on it
#   snapset_volume NAME FS SIZE dm-linear NAME over a fresh loop device, FS made and mounted;
#                               prints "DEVICE MOUNTPOINT"
#   snapset_volume_pair PREFIX  two such volumes, PREFIX-v0 (ext4, 64M) and PREFIX-v1 (xfs, 300M),
#                               each with 2 MiB of random data in "data", synced, tables
#                               remembered; sets the arrays devs, mnts, names and sums (of data)
#   snapset_capture VAR CMD...  runs CMD; VAR_out, VAR_err, VAR_rc get stdout, stderr, status
#   fs_not_frozen MNT...        fails unless a write to each MNT returns within 5 s (then thaws)
#   snapset_assert_clean WHAT COWDIR NAME...
#                               no snapset-* dm device, no loop device on a file in COWDIR, no
#                               file in COWDIR, and each dm device NAME active (not suspended)
#                               with the table it had at snapset_remember_tables
#   snapset_remember_tables NAME...
#   snapset_log_hook NAME LOG   a global hook /etc/snapset/hooks.d/NAME that appends a line per
#                               run to LOG: "PHASE USEC SET_ID CGROUP" (removed at exit)
#   snapset_definition NAME     /etc/snapset/sets.d/NAME.conf := stdin; at exit the file and the
#                               definition's sets are removed
#   snapset_journal SINCE_USEC [MATCH...]   snapsetd's journal entries since SINCE_USEC, JSON lines
#                               (journalctl --sync first: what snapsetd sent is in)
#   snapset_py [ARGS...] <<'PY' ... PY     python3 with a raw varlink client defined:
#                               conn(), call(sock, method, params) -> (reply dict), SOCKET

SNAPSET_SOCKET_PATH=/run/snapset/io.snapset.Manager

snapset_restart() {
	local i
	systemctl restart snapsetd.service
	for i in $(seq 50); do
		snapsetctl status >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	fail "snapsetd does not answer after a restart: $(systemctl status --no-pager snapsetd.service 2>&1 | tail -n 15)"
}

snapset_conf() {
	local conf=/etc/snapset/snapsetd.conf
	mkdir -p /etc/snapset
	if [[ ! -e $SNAPSET_VM_TMP/.snapsetd.conf.saved && ! -e $SNAPSET_VM_TMP/.snapsetd.conf.absent ]]; then
		if [[ -e $conf ]]; then
			cp -a "$conf" "$SNAPSET_VM_TMP/.snapsetd.conf.saved"
			defer "cp -a $SNAPSET_VM_TMP/.snapsetd.conf.saved $conf && systemctl restart snapsetd.service"
		else
			touch "$SNAPSET_VM_TMP/.snapsetd.conf.absent"
			defer "rm -f $conf && systemctl restart snapsetd.service"
		fi
	fi
	printf '%s\n' "$1" >"$conf"
	snapset_restart
}

# Through a file in /run that snapsetd re-reads at every set (SNAPSETD_TEST_HOOKS_FILE, put into
# the service manager's environment once, with one restart): changing the hooks costs no restart.
SNAPSET_HOOKS_FILE=/run/snapset-test-hooks
snapset_hooks() {
	printf '%s\n' "$1" >"$SNAPSET_HOOKS_FILE"
	[[ -e $SNAPSET_VM_TMP/.hooks-set ]] && return 0
	touch "$SNAPSET_VM_TMP/.hooks-set"
	defer "rm -f $SNAPSET_HOOKS_FILE; systemctl unset-environment SNAPSETD_TEST_HOOKS_FILE && systemctl restart snapsetd.service"
	systemctl set-environment "SNAPSETD_TEST_HOOKS_FILE=$SNAPSET_HOOKS_FILE"
	snapset_restart
}

snapset_log_hook() {
	local hook=/etc/snapset/hooks.d/$1 log=$2
	mkdir -p /etc/snapset/hooks.d
	: >"$log"
	defer "rm -f $hook $log"
	# shellcheck disable=SC2016 # the hook expands these when it runs
	printf '#!/bin/sh\necho "$%s $(date +%%s%%6N) $%s $(cut -d: -f3 /proc/self/cgroup)" >>%s\n' \
		SNAPSET_HOOK_PHASE SNAPSET_SET_ID "$log" >"$hook"
	chmod 0755 "$hook"
}

snapset_definition() {
	local name=$1
	mkdir -p /etc/snapset/sets.d
	if [[ ! -e /etc/snapset/sets.d/$name.conf ]]; then
		defer "snapsetctl --json list --sets | jq -r 'select(.definition == \"$name\") | .id' | xargs -r -n 1 snapsetctl delete"
		defer "rm -f /etc/snapset/sets.d/$name.conf"
	fi
	cat >"/etc/snapset/sets.d/$name.conf"
}

snapset_cow_dir() {
	local dev mnt
	dev=$(loop_create "$1")
	mkfs.ext4 -q "$dev"
	mnt=$(mount_tmp "$dev")
	mkdir -p "$mnt/cow"
	echo "$mnt/cow"
}

snapset_volume() {
	local name=$1 fs=$2 size=$3 loop dev mnt
	loop=$(loop_create "$size")
	dev=$(dm_create "$name" "0 $(sectors "$loop") linear $loop 0")
	case $fs in
	ext4) mkfs.ext4 -q -F "$dev" ;;
	xfs) mkfs.xfs -q -f "$dev" ;;
	*) fail "snapset_volume: unknown filesystem $fs" ;;
	esac
	mnt=$(mount_tmp "$dev")
	echo "$dev $mnt"
}

snapset_volume_pair() {
	local fss=(ext4 xfs) sizes=(64M 300M) i vol dev mnt
	devs=() mnts=() names=() sums=()
	for i in 0 1; do
		vol=$(snapset_volume "$1-v$i" "${fss[i]}" "${sizes[i]}")
		read -r dev mnt <<<"$vol"
		devs+=("$dev") mnts+=("$mnt") names+=("$1-v$i")
		random_file "$mnt/data" 2
		sums+=("$(sha "$mnt/data")")
	done
	sync
	snapset_remember_tables "${names[@]}"
}

snapset_capture() {
	local var=$1 _o _e _rc=0
	shift
	_o=$("$@" 2>"$SNAPSET_VM_TMP/.capture.err") || _rc=$?
	_e=$(cat "$SNAPSET_VM_TMP/.capture.err")
	printf -v "${var}_out" '%s' "$_o"
	printf -v "${var}_err" '%s' "$_e"
	printf -v "${var}_rc" '%s' "$_rc"
}

# A write into a frozen filesystem blocks, uninterruptibly: write in the background and look
# whether it returned. It may fail (a filesystem that had I/O errors): what matters is that it
# does not hang. Several mountpoints are probed at once.
fs_not_frozen() {
	local pids=() m i left
	for m in "$@"; do
		(echo probe >"$m/.snapset-probe" 2>/dev/null; rm -f "$m/.snapset-probe" 2>/dev/null) &
		pids+=($!)
	done
	for i in $(seq 50); do
		left=0
		for m in "${pids[@]}"; do
			kill -0 "$m" 2>/dev/null && left=1
		done
		((left)) || break
		sleep 0.1
	done
	if ((left)); then
		for m in "$@"; do
			fsfreeze -u "$m" 2>/dev/null && echo "$m was frozen; thawed it now" >&2
		done
		wait "${pids[@]}" || true
		fail "a filesystem is frozen: a write into it did not return within 5 s ($*)"
	fi
	wait "${pids[@]}" || true
}

# snapset_create NAME VOLUME...: "snapsetctl --json create", which must succeed; the set's JSON
# in NAME_json, its id in NAME_id; deleted at exit if still there.
snapset_create() {
	local var=$1 id
	shift
	snapset_capture _create snapsetctl --json create "$@"
	((_create_rc == 0)) || fail "snapsetctl create $*: exited with $_create_rc: $_create_err"
	id=$(jq -r .id <<<"$_create_out")
	defer "snapsetctl delete $id >/dev/null 2>&1 || true"
	printf -v "${var}_json" '%s' "$_create_out"
	printf -v "${var}_id" '%s' "$id"
}

snapset_remember_tables() {
	local n
	for n in "$@"; do
		dmsetup table "$n" >"$SNAPSET_VM_TMP/.table.$n"
	done
}

snapset_assert_clean() {
	local what=$1 cowdir=$2 left n tables attrs
	shift 2
	left=$(dmsetup ls | awk '$1 ~ /^snapset-/ { print $1 }')
	[[ -z $left ]] || fail "$what: dm devices left: $left"
	left=$(losetup -l -n -O NAME,BACK-FILE | grep -F "$cowdir" || true)
	[[ -z $left ]] || fail "$what: loop devices left on COW files: $left"
	left=$(find "$cowdir" -mindepth 1 2>/dev/null)
	[[ -z $left ]] || fail "$what: files left in the COW directory: $left"
	(($#)) || return 0
	# Every device at once, each table line as "NAME: TABLE".
	tables=$(dmsetup table)
	attrs=$(dmsetup info -c --noheadings -o name,attr --separator ' ')
	for n in "$@"; do
		local t
		t=$(sed -n "s/^$n: //p" <<<"$tables")
		[[ $t == "$(cat "$SNAPSET_VM_TMP/.table.$n")" ]] ||
			fail "$what: the table of $n changed: '$t', was '$(cat "$SNAPSET_VM_TMP/.table.$n")'"
		[[ $(awk -v n="$n" '$1 == n { print $2 }' <<<"$attrs") != *s* ]] || fail "$what: $n is left suspended"
	done
}

snapset_journal() {
	local since=$1
	shift
	journalctl --sync 2>/dev/null || true
	journalctl --no-pager -o json --since "@$((since / 1000000))" _SYSTEMD_UNIT=snapsetd.service "$@" |
		jq -c --argjson s "$since" 'select((.__REALTIME_TIMESTAMP | tonumber) >= $s)'
}

now_usec() {
	echo $(($(date +%s%N) / 1000))
}

# A raw varlink client (NUL-terminated JSON on the socket), for what snapsetctl cannot do:
# hold a connection, race two clients.
_snapset_py_prelude='
import json, os, socket, sys, time
SOCKET = "/run/snapset/io.snapset.Manager"
class Conn:
    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(SOCKET)
        self.buf = b""
    def close(self):
        self.sock.close()
def conn():
    return Conn()
def send(c, method, params=None, more=False):
    msg = {"method": method if "." in method else "io.snapset.Manager." + method}
    if params is not None:
        msg["parameters"] = params
    if more:
        msg["more"] = True
    c.sock.sendall(json.dumps(msg).encode() + b"\0")
def recv(c, timeout=120):
    c.sock.settimeout(timeout)
    while b"\0" not in c.buf:
        d = c.sock.recv(65536)
        if not d:
            raise EOFError("snapsetd closed the connection")
        c.buf += d
    m, c.buf = c.buf.split(b"\0", 1)
    return json.loads(m)
def call(c, method, params=None, timeout=120):
    send(c, method, params)
    return recv(c, timeout)
'

snapset_py() {
	/usr/bin/python3 -c "$_snapset_py_prelude$(cat)" "$@"
}

# --- consistent cuts (60, 80) --------------------------------------------------
#
#   seq_writer_start BLOCKS PATH...   a writer appending "k\n" to each PATH in turn, k = 0, 1, ...;
#                               a short pause after each round; every write that took longer than
#                               2 ms goes to BLOCKS as "t0_usec t1_usec index k". Prints its pid;
#                               stopped (and waited for) when the test exits. fsync after each
#                               write while $SNAPSET_VM_TMP/fsync exists.
#   seq_writer_stop PID         stop it now
#   seq_check_cut FILE...       each FILE (a snapshot of PATH, in writer order) is exactly
#                               "0\n1\n...\nlast\n", and the lasts are a consistent cut:
#                               non-increasing in writer order, differing by at most 1. Prints the
#                               lasts; exits non-zero with the reason otherwise.
#   seq_max_block BLOCKS T0 T1  the writer's longest blocked write between T0 and T1 (usec)
#
# Why a cut shows one instant: a write to a frozen filesystem blocks until the thaw, and the
# writer is one sequential process. So a snapshot holds a prefix of the writer's sequence: if a
# write made it into a snapshot and an earlier one (to another volume of the set) did not, that
# earlier write would have blocked until after the thaw, and the later one could not have started.

seq_writer_start() {
	local blocks=$1 pid
	shift
	: >"$blocks"
	# stdout closed: the caller runs this in $(...), which would wait for it otherwise.
	/usr/bin/python3 - "$SNAPSET_VM_TMP/fsync" "$blocks" "$@" >/dev/null 2>&1 <<'PY' &
import os, sys, time, signal
flag, blocks, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
fds = [os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644) for p in paths]
log = open(blocks, "a", buffering=1)
stop = False
def on_term(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, on_term)
k = 0
while not stop:
    sync = os.path.exists(flag)
    for i, fd in enumerate(fds):
        t0 = time.time_ns()
        os.write(fd, b"%d\n" % k)
        if sync:
            os.fsync(fd)
        t1 = time.time_ns()
        if t1 - t0 > 2_000_000:
            log.write("%d %d %d %d\n" % (t0 // 1000, t1 // 1000, i, k))
    k += 1
    # Leave the (emulated) CPUs to the daemon and the test; the order of writes is what matters.
    time.sleep(0.005)
PY
	pid=$!
	defer "seq_writer_stop $pid"
	echo "$pid"
}

# Stops the writer and waits until it is gone (it is not this shell's child: started in $(...)).
seq_writer_stop() {
	local i
	kill "$1" 2>/dev/null || return 0
	for i in $(seq 100); do
		[[ -e /proc/$1 ]] || return 0
		sleep 0.1
	done
}

seq_check_cut() {
	/usr/bin/python3 - "$@" <<'PY'
import sys
lasts = []
for p in sys.argv[1:]:
    data = open(p, "rb").read()
    if not data.endswith(b"\n"):
        sys.exit("%s: does not end with a newline (torn write): %r" % (p, data[-40:]))
    nums = data.split(b"\n")[:-1]
    for j, v in enumerate(nums):
        if v != b"%d" % j:
            sys.exit("%s: line %d is %r, expected %d" % (p, j + 1, v[:40], j))
    lasts.append(len(nums) - 1)
ok = all(a >= b for a, b in zip(lasts, lasts[1:])) and lasts[0] - lasts[-1] <= 1
print(" ".join(map(str, lasts)))
sys.exit(0 if ok else "not a consistent cut: last numbers %s" % lasts)
PY
}

seq_max_block() {
	awk -v a="$2" -v b="$3" '$1 >= a && $2 <= b { d = $2 - $1; if (d > m) m = d } END { print m + 0 }' "$1"
}

# --- LVM (80-84) ---------------------------------------------------------------
#
#   lvm_vg NAME DISK...         pvcreate + vgcreate; removed with its PVs, disks wiped, at exit
#   lvm_snapset_lvs VG          the names of snapset's LVs in VG (snapset-<id>), sorted
#   lvm_assert_clean WHAT VG... no snapset LV in any VG, no snapset-* dm device, no device left
#                               suspended, and every thin pool's transaction id the same in the
#                               kernel and in LVM's metadata
#   lvm_pool_tids_agree VG POOL fails unless the kernel's and LVM's transaction ids agree
#   lockfs_freezes VG LV MNT    runs an administrator's own native "lvcreate -s" of VG/LV and says
#                               whether LVM's own suspend froze the filesystem at MNT ("yes"/"no"):
#                               while lvm holds the LV suspended, a FIFREEZE fails with EBUSY if
#                               the filesystem is frozen, and waits for the resume if it is not;
#                               the administrator's snapshot is removed again

lvm_vg() {
	local vg=$1
	shift
	defer "scratch_wipe $*"
	defer "pvremove -qq -y $* 2>/dev/null || true"
	defer "vgremove -qq -ff $vg 2>/dev/null || true"
	pvcreate -qq -y "$@"
	vgcreate -qq "$vg" "$@"
}

lvm_snapset_lvs() {
	lvs --noheadings -o lv_name "$1" 2>/dev/null | awk '$1 ~ /^snapset-/ { print $1 }' | sort
}

lvm_pool_tids_agree() {
	local vg=$1 pool=$2 kernel meta
	kernel=$(dmsetup status "$vg-$pool-tpool" | awk '{ print $4 }')
	meta=$(lvs --noheadings -o transaction_id "$vg/$pool" | tr -d ' ')
	[[ $kernel == "$meta" ]] || fail "thin pool $vg/$pool: transaction id $kernel in the kernel, $meta in LVM's metadata"
}

lvm_assert_clean() {
	local what=$1 vg left pool
	shift
	for vg in "$@"; do
		left=$(lvm_snapset_lvs "$vg")
		[[ -z $left ]] || fail "$what: snapset LVs left in $vg: $left"
		for pool in $(lvs --noheadings -o lv_name,segtype "$vg" | awk '$2 == "thin-pool" { print $1 }'); do
			lvm_pool_tids_agree "$vg" "$pool"
		done
	done
	left=$(dmsetup ls | awk '$1 ~ /^snapset-/ { print $1 }')
	[[ -z $left ]] || fail "$what: dm devices left: $left"
	left=$(dmsetup info -c --noheadings -o name,attr --separator ' ' | awk '$2 ~ /s/ { print $1 }')
	[[ -z $left ]] || fail "$what: devices left suspended: $left"
}

lockfs_freezes() {
	local vg=$1 lv=$2 mnt=$3 dm w
	dm=$(basename "$(readlink -f "/dev/$vg/$lv")")
	/usr/bin/python3 - "/sys/block/$dm/dm/suspended" "$mnt" >"$SNAPSET_VM_TMP/.lockfs" 2>&1 <<'PY' &
import fcntl, os, sys, time
FIFREEZE, FITHAW = 0xC0045877, 0xC0045878
f = open(sys.argv[1], "rb", buffering=0)
fd = os.open(sys.argv[2], os.O_RDONLY)
end = time.monotonic() + 60
while time.monotonic() < end:
    f.seek(0)
    if f.read(8).strip() == b"1":
        try:
            fcntl.ioctl(fd, FIFREEZE, 0)
            fcntl.ioctl(fd, FITHAW, 0)
            print("no")
        except OSError:
            print("yes")
        sys.exit(0)
    time.sleep(0.0002)
print("never suspended")
PY
	w=$!
	sleep 0.5
	lvcreate -qq -s -n adminsnap "$vg/$lv" >/dev/null 2>&1 || echo "admin lvcreate failed" >>"$SNAPSET_VM_TMP/.lockfs"
	wait "$w" || true
	lvremove -qq -f "$vg/adminsnap" >/dev/null 2>&1 || true
	head -n 1 "$SNAPSET_VM_TMP/.lockfs"
}
