#!/bin/bash
# No partial commit, for real: a 3-volume set (ext4, xfs, ext4 on dm-linear) fails on its first,
# middle and last volume, in every phase, and afterwards the machine looks as if nothing was
# tried. Failures:
#   (a) not enough room for one volume's COW store (real ENOSPC at preallocation)  -> exit 38
#       (v0:cow-size=1G: capped by the provider to the origin's 64 MiB, still more than is free)
#   (b) a volume that does not exist, a path that is not a block device            -> exit 26, 15
#   (c) a real I/O failure: a clean, mounted ext4 whose dm table is switched to dm-flakey with
#       error_writes, as the middle volume of v0, it, v2                           -> non-zero
#       (aimed at its FIFREEZE inside the window, after v0 is frozen; on 6.1 the error surfaces
#       already at the syncfs before the window, which is what this run sees and checks)
#   (d) SNAPSETD_TEST_HOOKS=fail=PHASE:INDEX (snapsetd restarted with it) for the phases
#       preparing, flushing, holding, committing, finishing and INDEX 0, 1, 2      -> exit 24
#       (before the provider is called), and fail-inside=holding|committing:1 (inside the
#       provider, with volume 0 already suspended, or its snapshot active)
# After every failure: the exit status and the JSON error name the code and the volume; no
# snapset-* dm device, no loop device on a COW file, no file in the COW directory, every origin
# active with its table as before, no filesystem frozen (a write returns), the origins' data
# byte-identical, "snapsetctl list" empty, no set in creation; the journal has the failure record
# (SNAPSET_VSS_NAME=, SNAPSET_VOLUME=, SNAPSET_EVENT_USEC=, __REALTIME_TIMESTAMP).
#
# No logging inside the window, checked from the journal: for failures injected while writes are
# held (holding, committing), the coordinator's event about the failure happens inside the window:
# its SNAPSET_EVENT_USEC e is between the first freeze and the last thaw, and it reaches the
# journal at a >= the last thaw (it was queued). So [e, a) lies in the window or after it, before
# the queue was flushed; every snapsetd journal entry that arrived in [e, a) must therefore be a
# queued one: a set event of this set with its own SNAPSET_EVENT_USEC in [e, a), or a log line
# marked "(queued while frozen at ...)". Anything else was written while filesystems were frozen.
# (The part of the window before e is not covered: nothing inside the daemon marks its start in
# the journal without logging.)
#
# The matrix does not stop at the first problem: every case runs, and the test fails at the end
# with the list of what went wrong.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 mkfs.xfs jq losetup
modprobe dm-snapshot
modprobe dm-flakey 2>/dev/null || true
modprobe loop

# Small, so that one volume's COW store can be made not to fit: the provider caps a store at what
# the origin could ever need (its size plus metadata), so asking for 1G on a 64 MiB volume asks
# for about 64 MiB, more than this filesystem has free.
cowdir=$(snapset_cow_dir 48M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=4M"

fss=(ext4 xfs ext4)
devs=() mnts=() names=()
for i in 0 1 2; do
	size=64M
	[[ ${fss[i]} == xfs ]] && size=300M
	vol=$(snapset_volume "t61-v$i" "${fss[i]}" "$size")
	read -r dev mnt <<<"$vol"
	devs+=("$dev") mnts+=("$mnt") names+=("t61-v$i")
	random_file "$mnt/data" 2
done
sync
(cd / && sha256sum "${mnts[@]/%//data}") >"$SNAPSET_VM_TMP/sums"
snapset_remember_tables "${names[@]}"
step "volumes: ${devs[*]} (${fss[*]}); COW directory $cowdir (a 48 MiB ext4 of its own)"

problems=()
problem() {
	echo "PROBLEM: $*" >&2
	problems+=("$*")
}

# The checks after a failure. Args: label, start time (usec), expected VSS name, the volume the
# failure concerns, and whether the failure happened inside the window (1) or not (0).
after_failure() {
	local label=$1 since=$2 vss=$3 volume=$4 inwindow=$5 rec
	snapset_assert_clean "$label" "$cowdir" "${names[@]}"
	fs_not_frozen "${mnts[@]}"
	sha256sum --quiet -c "$SNAPSET_VM_TMP/sums" >/dev/null || fail "$label: origin data changed: $(sha256sum -c "$SNAPSET_VM_TMP/sums" 2>&1)"
	[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "$label: snapsetctl list shows a set: $(snapsetctl list 2>&1)"
	[[ $(snapsetctl --json status | jq -c .setInProgress) == null ]] ||
		fail "$label: a set is still in creation: $(snapsetctl --json status | jq -c .setInProgress)"

	# The failure record (journalctl --sync in snapset_journal: what snapsetd sent is in).
	journal=$(snapset_journal "$since")
	rec=$(jq -c --arg v "$vss" 'select(.SNAPSET_VSS_NAME == $v and (.MESSAGE | tostring | test("fail|not|cannot"; "i")))' <<<"$journal" | tail -n 1)
	if [[ -z $rec ]]; then
		problem "$label: no journal record with SNAPSET_VSS_NAME=$vss; snapsetd logged: $(jq -r '.MESSAGE | tostring' <<<"$journal" | tail -n 8 | tr '\n' '|')"
	else
		[[ $(jq -r '"\(.SNAPSET_EVENT_USEC // "") \(.__REALTIME_TIMESTAMP)"' <<<"$rec") =~ ^[0-9]+\ [0-9]+$ ]] ||
			problem "$label: the journal record lacks SNAPSET_EVENT_USEC or __REALTIME_TIMESTAMP: $rec"
		[[ -z $volume || $(jq -r '.SNAPSET_VOLUME // ""' <<<"$rec") == "$volume" ]] ||
			problem "$label: journal record has SNAPSET_VOLUME='$(jq -r '.SNAPSET_VOLUME // ""' <<<"$rec")', expected $volume: $(jq -r .MESSAGE <<<"$rec")"
		catalog_check "$label" "$vss" "$rec"
	fi
	if ((inwindow)); then
		window_check "$label"
	fi
	step "ok: $label: nothing left (dm, loop, COW files), origins active with their tables, thawed, data identical, list empty, journal: $(jq -r '.MESSAGE | tostring' <<<"${rec:-null}" | cut -c1-110)"
}

# The journal catalog (systemd/snapset.catalog): 'journalctl -x' explains the failures an
# administrator meets most, with the fields of the event filled in.
journalctl --update-catalog
declare -A catalog_subject=(
	[VSS_E_INSUFFICIENT_STORAGE]="Not enough space for a snapshot"
	[VSS_E_PROVIDER_VETO]="A provider refused a snapshot"
)
catalog_check() {
	local label=$1 vss=$2 rec=$3 id shown
	[[ -n ${catalog_subject[$vss]:-} ]] || return 0
	id=$(jq -r '.MESSAGE_ID // ""' <<<"$rec")
	[[ $id =~ ^[0-9a-f]{32}$ ]] || { problem "$label: the journal record has no MESSAGE_ID: $rec"; return; }
	shown=$(journalctl -x --no-pager -o short MESSAGE_ID="$id" -n 1 _SYSTEMD_UNIT=snapsetd.service)
	[[ $shown == *"${catalog_subject[$vss]}"* && $shown == *"$(jq -r '.SNAPSET_VOLUME // ""' <<<"$rec")"* ]] ||
		{ problem "$label: journalctl -x shows no catalog entry '${catalog_subject[$vss]}' with the volume for $id: $shown"; return; }
	step "ok: $label: journalctl -x explains MESSAGE_ID=$id: ${catalog_subject[$vss]}"
}

# See the header. The in-window event is the coordinator's about the failed HoldWrites or
# CommitSnapshots.
window_check() {
	local label=$1 out
	out=$(jq -s -r '
		def arrival: (.__REALTIME_TIMESTAMP | tonumber);
		def evtime: if .SNAPSET_EVENT_USEC then (.SNAPSET_EVENT_USEC | tonumber)
			elif (.MESSAGE | tostring | test("queued while frozen at [0-9]+")) then
				(.MESSAGE | tostring | capture("queued while frozen at (?<u>[0-9]+)").u | tonumber)
			else null end;
		(map(select((.SNAPSET_METHOD // "") | test("^(HoldWrites|CommitSnapshots)$"))) | first) as $in
		| if $in == null then "NOEVENT"
		  else ($in | evtime) as $e | ($in | arrival) as $a
		  | if $a <= $e then "NOTQUEUED \($e) \($a)"
		    else (map(select(arrival >= $e and arrival < $a
		            and ((evtime // -1) < $e or (evtime // -1) >= $a))) | map(.MESSAGE | tostring)) as $bad
		    | if ($bad | length) > 0 then "BAD \($bad | join(" | "))" else "OK \($e) \($a)" end
		    end
		  end' <<<"$journal")
	case $out in
	OK*)
		read -r _ e a <<<"$out"
		step "ok: $label: the in-window event happened at $e and reached the journal at $a (+$((a - e)) us, after the thaw); nothing else from snapsetd reached the journal in between"
		;;
	NOEVENT) problem "$label: no journal event naming HoldWrites/CommitSnapshots for the failure inside the window" ;;
	NOTQUEUED*) problem "$label: the in-window event was not delayed until after the thaw: $out" ;;
	*) problem "$label: snapsetd wrote to the journal while filesystems were frozen: ${out#BAD }" ;;
	esac
}

# Runs snapsetctl --json create ARGS, checks the exit status, the VSS name and the volume of the
# error, then everything else. Args: label, expected exit status, expected VSS name, the volume
# the error must name, in-window flag, then the volumes.
expect_failure() {
	local label=$1 rc=$2 vss=$3 volume=$4 inwindow=$5 since got_vss got_vol
	shift 5
	since=$(now_usec)
	snapset_capture c snapsetctl --json create "$@"
	if ((c_rc == 0)); then
		local id
		id=$(jq -r .id <<<"$c_out")
		snapsetctl delete "$id" >/dev/null 2>&1 || true
		fail "$label: the set was created, but should have failed: $c_out"
	fi
	got_vss=$(jq -r '.vssName // ""' <<<"$c_out" 2>/dev/null || true)
	got_vol=$(jq -r '.volume // ""' <<<"$c_out" 2>/dev/null || true)
	if [[ $c_rc != "$rc" || $got_vss != "$vss" ]]; then
		problem "$label: exit $c_rc $got_vss, expected exit $rc $vss (stderr: $c_err)"
	elif [[ -n $volume && $got_vol != "$volume" ]]; then
		problem "$label: the error names volume '$got_vol', expected $volume (stderr: $c_err)"
	else
		step "ok: $label: exit $c_rc, $got_vss, volume $got_vol"
	fi
	after_failure "$label" "$since" "$got_vss" "$volume" "$inwindow"
}

# --- (a) a COW store that does not fit ------------------------------------------
for i in 0 1 2; do
	args=("${devs[@]}")
	args[i]="${devs[i]}:cow-size=1G"
	expect_failure "(a) COW store too large for the directory on volume $i" 38 VSS_E_INSUFFICIENT_STORAGE "${devs[i]}" 0 "${args[@]}"
done

# --- (b) no such device; not a block device -------------------------------------
echo "not a device" >"$SNAPSET_VM_TMP/plain-file"
for i in 0 1 2; do
	args=("${devs[@]}")
	args[i]=/dev/mapper/t61-does-not-exist
	expect_failure "(b) missing device as volume $i" 26 VSS_E_OBJECT_NOT_FOUND /dev/mapper/t61-does-not-exist 0 "${args[@]}"
done
args=("${devs[@]}")
args[1]=$SNAPSET_VM_TMP/plain-file
expect_failure "(b) regular file as volume 1" 15 E_INVALIDARG "$SNAPSET_VM_TMP/plain-file" 0 "${args[@]}"

# --- (d) injected failures in every phase ----------------------------------------
for phase in preparing flushing holding committing finishing; do
	for i in 0 1 2; do
		snapset_hooks "fail=$phase:$i"
		inwindow=0
		[[ $phase == holding || $phase == committing ]] && inwindow=1
		expect_failure "(d) fail=$phase:$i" 24 VSS_E_PROVIDER_VETO "${devs[i]}" "$inwindow" "${devs[@]}"
	done
done
# Inside the provider's own loop: the origins (or snapshots) before volume i are already
# suspended (or active) when volume i fails; all of it is undone.
for phase in holding committing; do
	snapset_hooks "fail-inside=$phase:1"
	expect_failure "(d) fail-inside=$phase:1" 24 VSS_E_PROVIDER_VETO "${devs[1]}" 1 "${devs[@]}"
done
snapset_hooks ""

# --- (c) a real I/O failure ------------------------------------------------------
if dmsetup targets | grep -q '^flakey'; then
	# No lazy initialisation: ext4lazyinit would write in the background, fail, and the error
	# would surface at the syncfs before the window instead of at the freeze inside it.
	floop=$(loop_create 64M)
	fdev=$(dm_create t61-flakey "0 $(sectors "$floop") linear $floop 0")
	mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 "$fdev"
	fmnt=$(mount_tmp "$fdev")
	sync
	floop=$(dmsetup table t61-flakey | awk '{ print $4 }')
	fsize=$(dmsetup table t61-flakey | awk '{ print $2 }')
	# Reads work, every write fails with EIO, from now on (up 0 s, down 3600 s).
	dmsetup load t61-flakey --table "0 $fsize flakey $floop 0 0 3600 1 error_writes"
	dmsetup suspend t61-flakey
	dmsetup resume t61-flakey
	snapset_remember_tables t61-flakey
	step "(c) t61-flakey (ext4, mounted, clean) now fails every write: $(dmsetup table t61-flakey)"
	since=$(now_usec)
	snapset_capture c snapsetctl --json create "${devs[0]}" "$fdev" "${devs[2]}"
	if ((c_rc == 0)); then
		id=$(jq -r .id <<<"$c_out")
		snapsetctl delete "$id" >/dev/null 2>&1 || true
		problem "(c) a set with a volume that fails every write was created: $c_out"
	else
		step "ok: (c) exit $c_rc: $(jq -r '"\(.vssName) volume=\(.volume // "-") \(.message)"' <<<"$c_out" 2>/dev/null || echo "$c_err")"
		vss=$(jq -r '.vssName // ""' <<<"$c_out" 2>/dev/null || true)
		snapset_assert_clean "(c)" "$cowdir" "${names[@]}" t61-flakey
		fs_not_frozen "$fmnt"
		step "ok: (c) t61-flakey: its table is still the flakey one, not suspended, not frozen"
		after_failure "(c) dm-flakey error_writes as the middle volume" "$since" "$vss" "" 0
	fi
else
	problem "(c) not run: the kernel has no dm-flakey target"
fi

if ((${#problems[@]})); then
	printf '%s\n' "${problems[@]}" >&2
	fail "${#problems[@]} problem(s), listed above"
fi
