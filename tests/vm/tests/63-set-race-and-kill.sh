#!/bin/bash
# One set in creation at a time, and a daemon killed inside the window leaves nothing behind:
#   race   two varlink clients call StartSnapshotSet at the same moment (5 rounds): exactly one
#          gets a set id, the other VSS_E_SNAPSHOT_SET_IN_PROGRESS; while the winner adds a
#          volume, the loser is still refused; after the winner's DoSnapshotSet returns, the
#          loser's StartSnapshotSet succeeds. The winner's backup set goes with its connection.
#   kill   SNAPSETD_TEST_HOOKS=kill=finishing (SIGKILL once the set is thawed, its snapshots
#          made, the set not yet recorded): snapsetctl create fails; systemd restarts snapsetd
#          (Restart=on-failure), which recovers from /run/snapset/inflight: every filesystem
#          writable, every origin ACTIVE with its original table, no snapset-* device, no loop
#          device, no COW file, data byte-identical, nothing listed; the journal of the new
#          daemon says what it undid. (The kills inside the window, where the thaw guardian
#          acts, are 64-thaw-guardian's.)
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
DefaultCowSize=8M"

snapset_volume_pair t63

# --- the race ---------------------------------------------------------------------
step "--- two clients race StartSnapshotSet, 5 rounds ---"
out=$(snapset_py "${devs[0]}" <<'PY'
import threading
dev = sys.argv[1]
INPROG = "io.snapset.Manager.SnapshotSetInProgress"
for rnd in range(5):
    a, b = conn(), conn()
    barrier = threading.Barrier(2)
    res = [None, None]
    def start(i, c):
        barrier.wait()
        res[i] = call(c, "StartSnapshotSet", {"context": "backup"})
    ts = [threading.Thread(target=start, args=(i, c)) for i, c in enumerate((a, b))]
    for t in ts: t.start()
    for t in ts: t.join()
    won = [i for i in (0, 1) if "error" not in res[i]]
    lost = [i for i in (0, 1) if "error" in res[i]]
    if len(won) != 1:
        sys.exit("round %d: %d winners: %s" % (rnd, len(won), res))
    w, l = won[0], lost[0]
    if res[l]["error"] != INPROG or res[l]["parameters"].get("vssName") != "VSS_E_SNAPSHOT_SET_IN_PROGRESS":
        sys.exit("round %d: the loser got %s" % (rnd, res[l]))
    cw, cl = (a, b) if w == 0 else (b, a)
    sid = res[w]["parameters"]["setId"]
    r = call(cl, "GetStatus")
    if (r["parameters"].get("setInProgress") or {}).get("id") != sid:
        sys.exit("round %d: GetStatus does not show set %s in creation: %s" % (rnd, sid, r))
    if rnd < 4:
        # The winner gives up; the lock is free again for anybody.
        r = call(cw, "AbortSnapshotSet", {"setId": sid})
        if "error" in r:
            sys.exit("round %d: AbortSnapshotSet: %s" % (rnd, r))
        r = call(cl, "StartSnapshotSet", {"context": "backup"})
        if "error" in r:
            sys.exit("round %d: Start after the winner's abort: %s" % (rnd, r))
        call(cl, "AbortSnapshotSet", {"setId": r["parameters"]["setId"]})
        print("round %d: client %s won, the other got VSS_E_SNAPSHOT_SET_IN_PROGRESS; free again after AbortSnapshotSet" % (rnd, "ab"[w]))
        a.close(); b.close()
        continue
    # Last round: the winner goes through to DoSnapshotSet.
    r = call(cw, "AddToSnapshotSet", {"setId": sid, "volume": dev})
    if "error" in r:
        sys.exit("AddToSnapshotSet: %s" % r)
    r = call(cl, "StartSnapshotSet", {"context": "backup"})
    if r.get("error") != INPROG:
        sys.exit("Start while the winner adds volumes: %s" % r)
    # Do on the winner's connection, and from the loser a Start sent while Do runs: it is
    # answered either InProgress (before Do returned) or with a set id (after).
    send(cw, "DoSnapshotSet", {"setId": sid})
    r = call(cl, "StartSnapshotSet", {"context": "backup"})
    during = "in progress" if r.get("error") == INPROG else ("started" if "error" not in r else r)
    if "error" not in r:
        call(cl, "AbortSnapshotSet", {"setId": r["parameters"]["setId"]})
    d = recv(cw)
    if "error" in d:
        sys.exit("DoSnapshotSet: %s" % d)
    s = d["parameters"]["set"]
    r = call(cl, "StartSnapshotSet", {"context": "backup"})
    if "error" in r:
        sys.exit("StartSnapshotSet after DoSnapshotSet returned: %s" % r)
    call(cl, "AbortSnapshotSet", {"setId": r["parameters"]["setId"]})
    print("round %d: client %s won, the loser refused while it added %s; a Start sent during DoSnapshotSet: %s; after it returned (set %s, %s, freeze window %d us): the loser's Start succeeded" %
          (rnd, "ab"[w], dev, during, s["id"], s["state"], s["freezeWindowUsec"]))
    print("SET", s["id"])
    a.close(); b.close()
PY
) || fail "race: $out"
printf '%s\n' "$out"
step "ok: exactly one winner in each of 5 rounds; the lock is released by AbortSnapshotSet and by DoSnapshotSet's return"
for _ in $(seq 20); do
	[[ -z $(snapsetctl --json list 2>/dev/null) ]] && break
	sleep 0.1
done
[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "the winner's backup set outlived its connection: $(snapsetctl list)"
snapset_assert_clean "after the race" "$cowdir" "${names[@]}"
step "ok: the winner's backup set went with its connection; nothing left"

# --- SIGKILL inside the window ---------------------------------------------------------
for phase in finishing; do
	step "--- SNAPSETD_TEST_HOOKS=kill=$phase ---"
	snapset_hooks "kill=$phase"
	pid_before=$(systemctl show -P MainPID snapsetd.service)
	since=$(now_usec)
	snapset_capture c snapsetctl create "${devs[@]}"
	((c_rc != 0)) || fail "kill=$phase: snapsetctl create succeeded: $c_out"
	step "ok: kill=$phase: snapsetctl create exited with $c_rc: $(head -n 1 <<<"$c_err")"
	# systemd restarts it (Restart=on-failure); the next call would socket-activate it anyway.
	for _ in $(seq 50); do
		pid=$(systemctl show -P MainPID snapsetd.service)
		[[ $pid != 0 && $pid != "$pid_before" ]] && snapsetctl status >/dev/null 2>&1 && break
		sleep 0.2
	done
	[[ $pid != 0 && $pid != "$pid_before" ]] || fail "kill=$phase: snapsetd was not restarted (MainPID $pid)"
	assert_eq "$(systemctl show -P NRestarts snapsetd.service | awk '{ print ($1 > 0) ? "restarted" : "not" }')" restarted "kill=$phase: systemd restarted snapsetd"
	for i in "${!mnts[@]}"; do
		fs_not_frozen "${mnts[i]}"
		[[ $(sha "${mnts[i]}/data") == "${sums[i]}" ]] || fail "kill=$phase: data of ${devs[i]} changed"
		dmsetup info "${names[i]}" | grep -q '^State: *ACTIVE' || fail "kill=$phase: ${names[i]} is not ACTIVE: $(dmsetup info "${names[i]}")"
	done
	snapset_assert_clean "kill=$phase" "$cowdir" "${names[@]}"
	[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "kill=$phase: a set is listed: $(snapsetctl list)"
	msgs=$(snapset_journal "$since" _PID="$pid" | jq -r '.MESSAGE | tostring' | grep -Ei 'recover|undo|undid|interrupted|in-?flight|thaw|resum' || true)
	[[ -n $msgs ]] || fail "kill=$phase: the restarted snapsetd ($pid) logged nothing about a recovery: $(snapset_journal "$since" _PID="$pid" | jq -r .MESSAGE | head -n 15)"
	printf '    journal: %s\n' "${msgs//$'\n'/$'\n    journal: '}"
	step "ok: kill=$phase: thawed, origins ACTIVE with their tables, nothing left, data identical, recovery logged"
done
snapset_hooks ""
