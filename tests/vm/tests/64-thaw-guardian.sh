#!/bin/bash
# The freeze window outlives nothing: snapsetd killed at every point of it, and a FIFREEZE that
# takes longer than FlushTimeoutSec=.
#   kill   SNAPSETD_TEST_HOOKS=kill=POINT (SIGKILL there) for first-freeze (one filesystem
#          frozen), holding (all frozen), committing (frozen, every origin suspended), releasing
#          and half-thawed (one filesystem thawed again, the other not), on a set of an ext4 and
#          an xfs volume. systemd restarts snapsetd only after RestartSec=2s (a drop-in), so a
#          thaw before that is the thaw guardian's: every filesystem takes a write (open, write,
#          fsync) within 1 s (scaled to the VM's speed) of the daemon's death, and before the new
#          daemon starts. After the restart: nothing left (no snapset-* device, no loop device, no
#          COW file, no record), origins active with their tables, data identical, the recovery
#          in the journal.
#   state  the same (kill=committing) with /var/lib/snapset bind-mounted from the ext4 volume of
#          the set and the journal's directory (/var/log/journal) from the xfs one: thawed as
#          fast, snapsetd starts again, and its recovery events reach the journal. Then
#          kill-all=committing, the guardian killed with the daemon: nothing thaws until the
#          restart, where snapset-rescue.service (no StateDirectory=) thaws before systemd sets
#          up snapsetd's state directory on the frozen filesystem; the rescue is in the journal.
#   flush  FlushTimeoutSec=2 and a set of a fast volume and one whose writes are delayed 5 s
#          (dm-delay): VSS_E_FLUSH_WRITES_TIMEOUT; a writer on the fast one (frozen first) is
#          blocked for no longer than the flush timeout plus a small margin; a second set is
#          refused while the slow FIFREEZE is still stuck, naming it; once it returns, that
#          filesystem is thawed by itself, and nothing is left.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
# snapset_capture sets VAR_out, VAR_err and VAR_rc:
# shellcheck disable=SC2154
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 mkfs.xfs jq losetup
modprobe dm-snapshot
modprobe dm-delay
modprobe loop

cowdir=$(snapset_cow_dir 128M)
base_conf="[Storage]
CowDirectory=$cowdir
DefaultCowSize=8M"
snapset_conf "$base_conf"

# systemd waits 2 s before it restarts snapsetd: whatever is thawed sooner was thawed without it.
dropin=/run/systemd/system/snapsetd.service.d
mkdir -p "$dropin"
printf '[Service]\nRestartSec=2s\n' >"$dropin/64-restart.conf"
defer "rm -f $dropin/64-restart.conf; systemctl daemon-reload"
systemctl daemon-reload

snapset_volume_pair t64
limit_ms=$(awk -v s="$(scaled 1)" 'BEGIN { printf "%d", s * 1000 }')

# Runs "snapsetctl create" of the set, which snapsetd's death ends; then writes (open, write,
# fsync) into every filesystem at once, and prints, as JSON, how long after the daemon's death
# (systemd's ExecMainExitTimestampMonotonic, CLOCK_MONOTONIC like time.monotonic()) each write
# returned, and whether all did before the new daemon started.
kill_and_measure() {
	/usr/bin/python3 - "${#devs[@]}" "${devs[@]}" "${mnts[@]}" <<'PY'
import json, os, subprocess, sys, threading, time
n = int(sys.argv[1])
devs, mnts = sys.argv[2:2 + n], sys.argv[2 + n:]
def show(prop):
    out = subprocess.run(["systemctl", "show", "-P", prop, "snapsetd.service"], capture_output=True, text=True).stdout
    return int(out.strip() or 0)
before = show("ExecMainExitTimestampMonotonic")
create = subprocess.run(["snapsetctl", "create", *devs], capture_output=True, text=True)
done = {}
def probe(m):
    fd = os.open(os.path.join(m, ".probe-64"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.write(fd, b"x")
    os.fsync(fd)
    os.close(fd)
    done[m] = time.monotonic()
threads = [threading.Thread(target=probe, args=(m,), daemon=True) for m in mnts]
for t in threads:
    t.start()
# When the daemon died, read while the writes wait: a restart resets it (when the guardian died
# too, only the rescue unit at the restart thaws).
died = 0
for _ in range(100):
    died = show("ExecMainExitTimestampMonotonic")
    if died and died != before:
        break
    time.sleep(0.05)
died /= 1e6
for t in threads:
    t.join(60)
# The new daemon: wait for it (RestartSec=2s), then when it started.
for _ in range(300):
    started = show("ExecMainStartTimestampMonotonic") / 1e6
    if started > died:
        break
    time.sleep(0.1)
print(json.dumps({
    "create_rc": create.returncode,
    "create_err": create.stderr.strip().splitlines()[:1],
    "writable_ms": {m: round((done[m] - died) * 1000, 1) if m in done else None for m in mnts},
    "before_restart": all(m in done and done[m] < started for m in mnts),
    "restart_after_ms": round((started - died) * 1000, 1),
}))
PY
}

# After snapsetd's restart: nothing of the set is left, and the recovery is in the journal.
assert_recovered() {
	local what=$1 since=$2 pid msgs i
	for _ in $(seq 100); do
		snapsetctl status >/dev/null 2>&1 && break
		sleep 0.2
	done
	pid=$(systemctl show -P MainPID snapsetd.service)
	for i in "${!mnts[@]}"; do
		[[ $(sha "${mnts[i]}/data") == "${sums[i]}" ]] || fail "$what: data of ${devs[i]} changed"
	done
	snapset_assert_clean "$what" "$cowdir" "${names[@]}"
	[[ -z $(ls /run/snapset/inflight 2>/dev/null) ]] || fail "$what: records left: $(ls /run/snapset/inflight)"
	[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "$what: a set is listed: $(snapsetctl list)"
	msgs=$(snapset_journal "$since" _PID="$pid" | jq -r '.MESSAGE | tostring' | grep -Ei 'interrupted|undid|thaw|resum' || true)
	[[ -n $msgs ]] || fail "$what: the restarted snapsetd ($pid) logged nothing about the recovery"
	printf '    journal: %s\n' "${msgs//$'\n'/$'\n    journal: '}"
}

# One kill: the thaw's timing, checked and printed. HOOKS kill-all=...: the guardian dies with
# the daemon, nothing thaws before the restart, and the rescue unit at the restart must.
kill_phase() {
	local point=$1 what=$2 hooks=${3:-kill=$1} since out worst limit=$limit_ms rescue
	snapset_hooks "$hooks"
	since=$(now_usec)
	out=$(kill_and_measure)
	step "$what: $out"
	[[ $(jq -r .create_rc <<<"$out") != 0 ]] || fail "$what: snapsetctl create succeeded"
	# A write that never returned is null: fs_not_frozen thaws by hand, and fails.
	if jq -e '.writable_ms | to_entries | any(.value == null)' <<<"$out" >/dev/null; then
		fs_not_frozen "${mnts[@]}"
	fi
	worst=$(jq '[.writable_ms[]] | max | ceil' <<<"$out")
	if [[ $hooks == kill-all=* ]]; then
		limit=$(($(jq '.restart_after_ms | ceil' <<<"$out") + $(scaled 3) * 1000))
		rescue=$(snapset_journal "$since" _SYSTEMD_UNIT=snapset-rescue.service |
			jq -r 'select(._SYSTEMD_UNIT == "snapset-rescue.service") | .MESSAGE')
		assert_contains "$rescue" "resumed and thawed" "$what: snapset-rescue.service says what it thawed"
	else
		[[ $(jq -r .before_restart <<<"$out") == true ]] || fail "$what: not every filesystem was writable before snapsetd was restarted"
	fi
	((worst <= limit)) || fail "$what: a filesystem took a write only $worst ms after snapsetd died (limit $limit ms)"
	assert_recovered "$what" "$since"
	step "ok: $what: every filesystem writable $worst ms after snapsetd died (limit $limit ms)$([[ $hooks == kill-all=* ]] && echo ", by the rescue unit at the restart" || echo ", before its restart"); nothing left"
}

# --- SIGKILL at every point of the window ------------------------------------------------
for point in first-freeze holding committing releasing half-thawed; do
	kill_phase "$point" "kill=$point"
done

# --- the state directory and the journal on the set's filesystems ------------------------
mkdir -p "${mnts[0]}/state" "${mnts[1]}/journal" /var/log/journal
cp -a /var/lib/snapset/. "${mnts[0]}/state/"
mount --bind "${mnts[0]}/state" /var/lib/snapset
defer "umount /var/lib/snapset"
mount --bind "${mnts[1]}/journal" /var/log/journal
# A persistent journal, whatever this image's journald.conf says; back to how it was at the end.
mkdir -p /run/systemd/journald.conf.d
printf '[Journal]\nStorage=persistent\n' >/run/systemd/journald.conf.d/64-persistent.conf
defer "journalctl --relinquish-var; umount /var/log/journal; rm -f /run/systemd/journald.conf.d/64-persistent.conf; systemctl restart systemd-journald"
systemctl restart systemd-journald
journalctl --flush
[[ -n $(find "${mnts[1]}/journal" -name '*.journal' -print -quit) ]] ||
	fail "journald does not write to the set's xfs volume: $(find "${mnts[1]}/journal" | head -n 20)"
kill_phase committing "state directory and journal on the set, kill=committing"

# The guardian killed too: the restart's rescue unit is what thaws.
kill_phase committing "state directory and journal on the set, kill-all=committing (guardian killed too)" kill-all=committing
snapset_hooks ""

# --- a FIFREEZE slower than FlushTimeoutSec ---------------------------------------------
loop=$(loop_create 64M)
slow_dev=$(dm_create t64-slow "0 $(sectors "$loop") linear $loop 0")
# No lazy initialisation: ext4lazyinit would write in the background, and every one of those
# writes would take 5 s below.
mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 "$slow_dev"
# Frozen after the fast volume: the same depth, and later in name order than mnt.*.
slow_mnt=$SNAPSET_VM_TMP/zz-slow
mkdir -p "$slow_mnt"
# barrier=0: a syncfs of the clean filesystem then sends nothing to the device (with barriers it
# sends a cache flush, which dm-delay delays like a write), so that the set gets past its syncfs
# (bounded by FlushTimeoutSec= too) and it is the FIFREEZE, which writes the superblock, that
# sticks.
mount -o barrier=0 "$slow_dev" "$slow_mnt"
defer "umount $slow_mnt"
sync
# From now on every write to it takes 5 s (reads none): its FIFREEZE takes far longer than
# FlushTimeoutSec=2. Switched without a freeze (--nolockfs), which would write the superblock
# through the slow table on the way out. Put back before the end.
dmsetup load t64-slow --table "0 $(sectors "$loop") delay $loop 0 0 $loop 0 5000"
dmsetup suspend --nolockfs t64-slow
dmsetup resume t64-slow
defer "dmsetup load t64-slow --table '0 $(sectors "$loop") linear $loop 0' && dmsetup suspend --nolockfs t64-slow && dmsetup resume t64-slow"

snapset_conf "$base_conf
[Limits]
FlushTimeoutSec=2"
blocks=$SNAPSET_VM_TMP/blocks-64
writer=$(seq_writer_start "$blocks" "${mnts[0]}/seq")
t0=$(now_usec)
snapset_capture f snapsetctl --json create "${devs[0]}" "$slow_dev"
t1=$(now_usec)
seq_writer_stop "$writer"
((f_rc != 0)) || fail "flush: a set was created through a slow FIFREEZE with FlushTimeoutSec=2"
assert_eq "$(jq -r .vssName <<<"$f_out")" VSS_E_FLUSH_WRITES_TIMEOUT "flush: the code"
assert_contains "$(jq -r .message <<<"$f_out")" "$slow_mnt" "flush: the message names the stuck filesystem"
# The FIFREEZE timed out, not the syncfs before it (the slow filesystem is clean): the window's case.
assert_contains "$(jq -r .message <<<"$f_out")" "Freezing the filesystems took longer" "flush: the step that timed out"
worst=$(seq_max_block "$blocks" "$t0" "$t1")
margin=$(awk -v s="$(scaled 2)" 'BEGIN { printf "%d", s * 1000000 }')
((worst <= 2000000 + margin)) ||
	fail "flush: a writer on the fast volume was blocked $worst us (FlushTimeoutSec=2 plus $margin us allowed)"
step "ok: flush: VSS_E_FLUSH_WRITES_TIMEOUT after $(((t1 - t0) / 1000)) ms; the fast volume's writer was blocked at most $worst us (limit 2 s + $((margin / 1000)) ms)"

# While the slow FIFREEZE has not returned, a new set would wait behind it: refused.
snapset_capture g snapsetctl --json create "${devs[0]}"
if ((g_rc == 0)); then
	step "note: the slow FIFREEZE had already returned when the second set was asked for"
else
	assert_eq "$(jq -r .vssName <<<"$g_out")" VSS_E_BAD_STATE "flush: a set while the stuck FIFREEZE lingers"
	assert_contains "$(jq -r .message <<<"$g_out")" "has not returned yet" "flush: its message"
	step "ok: flush: a second set is refused while the FIFREEZE is stuck: $(jq -r .message <<<"$g_out")"
fi

# The stuck FIFREEZE returns (5 s per write), and the daemon's worker thaws it at once: a write
# (itself seconds on this device) goes through.
(echo probe >"$slow_mnt/.probe" && sync -f "$slow_mnt/.probe") &
probe=$!
for _ in $(seq "$(scaled 120)"); do
	kill -0 "$probe" 2>/dev/null || break
	sleep 1
done
if kill -0 "$probe" 2>/dev/null; then
	fsfreeze -u "$slow_mnt" 2>/dev/null && echo "$slow_mnt was still frozen; thawed it by hand" >&2
	fail "flush: the slow filesystem was not thawed after its FIFREEZE returned"
fi
wait "$probe" || true
fs_not_frozen "$slow_mnt" "${mnts[0]}"
snapset_assert_clean "flush" "$cowdir" "${names[@]}"
[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "flush: a set is listed: $(snapsetctl list)"
step "ok: flush: the slow filesystem thawed by itself once its FIFREEZE returned; nothing left"
