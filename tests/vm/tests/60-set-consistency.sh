#!/bin/bash
# Snapshot sets through the real daemon (socket-activated snapsetd, snapsetctl as a user runs it)
# are crash-consistent cuts. A writer appends increasing sequence numbers to a file on each of 8
# dm-linear volumes (ext4 and xfs) in turn, v0, v1, ... v7, then the next number; sets of 1, 2 and
# 8 volumes are taken while it writes (buffered; and 8 again with fsync after every write).
#
# Why the property holds: a write to a frozen filesystem blocks until the thaw, and the writer is
# one sequential process. So what a snapshot holds is a prefix of the writer's sequence of writes:
# if a write made it into a snapshot and an earlier one (to another volume of the set) did not,
# that earlier write would have blocked until after the thaw, and the later one could not have
# started before the set was taken. A prefix means: the last numbers, in the writer's order of the
# set's volumes, are (k+1, ..., k+1, k, ..., k): non-increasing, differing by at most 1.
#
# Also checked: every snapshot file is exactly "0\n1\n...\nlast\n" read WITHOUT journal replay
# (ext4 noload, xfs norecovery: the freeze left each filesystem clean); the origins went on
# (their last number is larger); the snapshots do not change while the origins are written (same
# checksums after dropping the page cache); a file written before the set is byte-identical.
# Prints the freeze window and hold time snapsetd reports for each set size, and the longest
# time the writer was blocked, as seen from outside.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 mkfs.xfs jq losetup
modprobe dm-snapshot
modprobe loop

NVOL=8
fss=(ext4 xfs ext4 ext4 xfs ext4 ext4 ext4)

cowdir=$(snapset_cow_dir 512M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=16M"

devs=() mnts=() names=()
for ((i = 0; i < NVOL; i++)); do
	size=64M
	[[ ${fss[i]} == xfs ]] && size=300M # xfsprogs refuses filesystems under 300 MB
	vol=$(snapset_volume "t60-v$i" "${fss[i]}" "$size")
	read -r dev mnt <<<"$vol"
	devs+=("$dev") mnts+=("$mnt") names+=("t60-v$i")
	random_file "$mnt/fixed" 1
	fixed_sha[i]=$(sha "$mnt/fixed")
done
sync
snapset_remember_tables "${names[@]}"
step "8 volumes: $(for i in "${!devs[@]}"; do printf '%s(%s) ' "${devs[i]}" "${fss[i]}"; done)"

# --- the writer ----------------------------------------------------------------

# The writer (lib.sh): "k\n" to v0..v7 in turn, fsync after each write while $fsync_flag exists.
fsync_flag=$SNAPSET_VM_TMP/fsync
blocks=$SNAPSET_VM_TMP/blocks
writer=$(seq_writer_start "$blocks" "${mnts[@]/%//sequence}")
sleep 1

last_line() { tail -n 1 "$1"; }
snapmounts=()

# Checks one set's snapshots. Args: set json, then the indices of the set's volumes in order.
check_set() {
	local json=$1 label=$2 i dev smnt opts n
	shift 2
	local idx=("$@") lasts=() sums=() files=()
	for i in "${idx[@]}"; do
		dev=$(jq -r --arg v "${devs[i]}" '.snapshots[] | select(.volume == $v) | .device' <<<"$json")
		[[ -b $dev ]] || fail "$label: no snapshot device for ${devs[i]} in the reply: $json"
		case ${fss[i]} in
		ext4) opts=ro,noload ;;
		xfs) opts=ro,nouuid,norecovery ;;
		esac
		smnt=$(mktemp -d "$SNAPSET_VM_TMP/snap.XXXXXX")
		mount -o "$opts" "$dev" "$smnt"
		defer "! mountpoint -q $smnt || umount $smnt"
		snapmounts+=("$smnt")
		files+=("$smnt/sequence")
		assert_eq "$(sha "$smnt/fixed")" "${fixed_sha[i]}" "$label: v$i (${fss[i]}) file written before the set, byte-identical in the snapshot"
	done
	# Each file is exactly 0..last, one number per line; the lasts form a consistent cut.
	n=$(seq_check_cut "${files[@]}") || fail "$label: $n"
	step "ok: $label: snapshot files are exactly 0..last; last numbers in writer order: $n (a consistent cut)"
	read -r -a lasts <<<"$n"
	for i in "${!files[@]}"; do
		sums+=("$(sha "${files[i]}")")
	done
	sleep 1
	sync
	echo 3 >/proc/sys/vm/drop_caches
	for i in "${!idx[@]}"; do
		local o
		o=$(last_line "${mnts[${idx[i]}]}/sequence")
		((o > lasts[i])) || fail "$label: origin v${idx[i]} did not move on: last $o, snapshot ${lasts[i]}"
		[[ $(sha "${files[i]}") == "${sums[i]}" ]] || fail "$label: the snapshot of v${idx[i]} changed while its origin was written"
	done
	step "ok: $label: every origin moved on past its snapshot; the snapshots stayed identical (re-read from the device)"
}

# Takes a set of the volumes with these indices, checks it, deletes it.
take_set() {
	local label=$1 t0 t1 json id win hold blk
	shift
	local idx=("$@") args=()
	for i in "${idx[@]}"; do args+=("${devs[i]}"); done
	step "--- $label: snapsetctl --json create ${args[*]} (writer running$([[ -e $fsync_flag ]] && echo ", fsync after every write")) ---"
	t0=$(now_usec)
	snapset_capture c snapsetctl --json create "${args[@]}"
	t1=$(now_usec)
	((c_rc == 0)) || fail "$label: snapsetctl create exited with $c_rc: $c_err $c_out"
	json=$c_out
	id=$(jq -r .id <<<"$json")
	defer "snapsetctl delete $id >/dev/null 2>&1 || true"
	assert_eq "$(jq -r '.state + " " + .context + " " + (.snapshots | length | tostring)' <<<"$json")" \
		"created persistent ${#idx[@]}" "$label: state, context and number of snapshots"
	# Every snapshot also has the stable name /dev/snapset/<snapshot id> (60-snapset.rules).
	udevadm settle
	while read -r sid sdev; do
		[[ -L /dev/snapset/$sid && $(readlink -f "/dev/snapset/$sid") == "$(readlink -f "$sdev")" ]] ||
			fail "$label: /dev/snapset/$sid does not lead to the snapshot device $sdev"
	done < <(jq -r '.snapshots[] | .id + " " + .device' <<<"$json")
	step "ok: $label: /dev/snapset/<snapshot id> leads to each snapshot device"
	win=$(jq -r .freezeWindowUsec <<<"$json")
	hold=$(jq -r .holdUsec <<<"$json")
	[[ $win =~ ^[0-9]+$ && $hold =~ ^[0-9]+$ ]] || fail "$label: no freeze window in the reply: $json"
	((hold <= win)) || fail "$label: holdUsec $hold > freezeWindowUsec $win"
	# The writer's longest blocked write during the call (it blocks on the first frozen volume).
	blk=$(seq_max_block "$blocks" "$t0" "$t1")
	printf 'FREEZE WINDOW %-26s %d volume(s): freezeWindowUsec=%d holdUsec=%d; writer blocked at most %d us; call %d ms\n' \
		"$label" "${#idx[@]}" "$win" "$hold" "$blk" $(((t1 - t0) / 1000)) | tee -a "$SNAPSET_VM_TMP/windows"
	check_set "$json" "$label" "${idx[@]}"
	cleanup_set "$label" "$id"
}

cleanup_set() {
	local label=$1 id=$2
	local m
	for m in "${snapmounts[@]}"; do
		umount "$m"
	done
	snapmounts=()
	snapset_capture d snapsetctl delete "$id"
	((d_rc == 0)) || fail "$label: snapsetctl delete $id exited with $d_rc: $d_err"
	snapset_assert_clean "$label: after delete" "$cowdir" "${names[@]}"
	udevadm settle
	[[ -z $(ls -A /dev/snapset 2>/dev/null) ]] || fail "$label: /dev/snapset still has $(ls /dev/snapset)"
	[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "$label: snapsetctl list still shows sets: $(snapsetctl list)"
	step "ok: $label: deleted; no snapset device, loop device or COW file left; origin tables as before"
}

# --- a second client while the 8-volume set is created -------------------------
#
# The daemon keeps serving during a set: a Monitor stream and a client polling GetStatus and
# ListSnapshots every 50 ms, each on a new connection, alongside the 8-volume create. Its
# results: the phases Monitor streamed, the phases GetStatus showed, and the slowest answers.
observer_start() {
	local out=$1
	# In the background of this shell (the caller takes $!), its output in a file.
	snapset_py "$out" >"$out.log" 2>&1 <<'PY' &
out = sys.argv[1]
mon = conn()
send(mon, "Monitor", more=True)
mon.sock.settimeout(0.05)
open(out + ".ready", "w").close()
streamed, seen, slowest = [], [], {"GetStatus": 0.0, "ListSnapshots": 0.0}
deadline = time.monotonic() + 600
while time.monotonic() < deadline and not streamed[-1:] in (["done"], ["aborted"]):
    for method in slowest:
        c = conn()
        t = time.monotonic()
        send(c, method, more=method == "ListSnapshots")
        r = recv(c)
        while r.get("continues"):
            r = recv(c)
        slowest[method] = max(slowest[method], time.monotonic() - t)
        if method == "GetStatus" and r["parameters"]["setInProgress"]:
            phase = r["parameters"]["setInProgress"]["phase"]
            if seen[-1:] != [phase]:
                seen.append(phase)
        c.close()
    try:
        while True:
            e = recv(mon, timeout=0.05)["parameters"]["event"]
            if e["type"] == "set-phase":
                streamed.append(e["phase"])
    except (socket.timeout, TimeoutError):
        pass
    time.sleep(0.05)
json.dump({"streamed": streamed, "seen": seen, "slowest": slowest}, open(out, "w"))
PY
}

take_set "1 volume" 0
take_set "2 volumes" 0 1
obs=$SNAPSET_VM_TMP/observer.json
observer_start "$obs"
obs_pid=$!
for _ in $(seq 100); do [[ -e $obs.ready ]] && break; sleep 0.1; done
[[ -e $obs.ready ]] || fail "the observer did not subscribe to Monitor"
t_create0=$(now_usec)
take_set "8 volumes" 0 1 2 3 4 5 6 7
t_create=$(($(now_usec) - t_create0))
wait "$obs_pid" || fail "the observer failed: $(cat "$obs.log")"
step "second client during the 8-volume set: $(cat "$obs")"
assert_eq "$(jq -c .streamed "$obs")" \
	'["adding","preparing","flushing","holding","committing","releasing","thawing","finishing","done"]' \
	"the phases Monitor streamed, in order"
# GetStatus showed the set moving through its phases as it happened (the polls are 50 ms apart;
# preparing alone takes seconds under TCG), and every answer came while the set was still being
# made, far sooner than the set itself.
jq -e '(.seen | any(. == "adding")) and (.seen | any(. == "preparing"))' "$obs" >/dev/null ||
	fail "GetStatus did not show the set's phases live: $(jq -c .seen "$obs")"
for m in GetStatus ListSnapshots; do
	slow=$(jq -r ".slowest.$m * 1000000 | floor" "$obs")
	((slow < t_create / 4)) || fail "$m took $slow us during a $t_create us create: the daemon stopped serving"
	step "ok: $m answered within $((slow / 1000)) ms at worst, during the $((t_create / 1000)) ms of creating and checking the set"
done
touch "$fsync_flag"
sleep 0.5
take_set "8 volumes, fsync" 0 1 2 3 4 5 6 7
rm -f "$fsync_flag"

seq_writer_stop "$writer"
for i in "${!mnts[@]}"; do
	fs_not_frozen "${mnts[i]}"
done
step "ok: every origin writable at the end"
echo "--- freeze windows (snapsetd's numbers; TCG: compare only within this run) ---"
cat "$SNAPSET_VM_TMP/windows"
