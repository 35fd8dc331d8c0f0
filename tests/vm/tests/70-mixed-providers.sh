#!/bin/bash
# One set mixing two providers: an ext4 on dm-linear, taken by the built-in dm-snapshot provider,
# and a loop device taken by the external test provider (tests/provider/snapset-test-provider,
# declared in a providers.d of the test's own). Both commit inside the same hold window.
#   - success: two snapshots, one per provider; deleting the set removes both sides;
#   - failure on the external side (a code outside the table in CommitSnapshots, a crash in
#     HoldWrites, a hang in PreCommitSnapshots): VSS_E_UNEXPECTED_PROVIDER_ERROR, and the
#     dm-snapshot side is undone too;
#   - failure on the dm side (its COW store does not fit): VSS_E_INSUFFICIENT_STORAGE, and the test
#     provider was asked to abort what it prepared;
#   - the test provider asleep in CommitSnapshots, or blocked in D state on the set's frozen
#     filesystem, past HoldTimeoutSec=3: VSS_E_HOLD_WRITES_TIMEOUT, writes blocked no longer than
#     the hold timeout plus a small margin;
#   - snapsetd SIGKILLed from outside while the test provider stalls in CommitSnapshots: the
#     set's ext4 takes a write within 1 s (scaled), and after the restart nothing is left;
# after every failure: no snapset-* dm device, no COW loop device or file, the origin's table as
# before and not suspended, its filesystem not frozen, no set listed, and the test provider's
# record shows AbortSnapshots for every snapshot it began.
# c_out, c_err and c_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 jq losetup python3
modprobe dm-snapshot
modprobe loop

src=${SNAPSET_VM_SRC:-}
if [[ -z $src && -r /run/snapset-vm/config ]]; then
	src=$(. /run/snapset-vm/config && echo "${SRC:-}")
fi
provider=$src/tests/provider/snapset-test-provider
[[ -n $src && -x $provider ]] || skip "needs the source tree's test provider (SNAPSET_VM_SRC, or SRC= in the harness's config)"

tp=$SNAPSET_VM_TMP/test-provider
mkdir -p "$tp/providers.d"
control=$tp/control.json
state=$tp/state.jsonl
echo '{}' >"$control"
cat >"$tp/providers.d/test.provider" <<EOF
[Provider]
Executable=$provider
Priority=50
Timeout=5

[Settings]
Control=$control
State=$state
EOF

cowdir=$(snapset_cow_dir 48M)
snapset_conf "[Daemon]
ProviderDirectory=$tp/providers.d

[Storage]
CowDirectory=$cowdir
DefaultCowSize=4M"

vol=$(snapset_volume t70-dm ext4 64M)
read -r dmdev mnt <<<"$vol"
random_file "$mnt/data" 2
sum=$(sha "$mnt/data")
sync
snapset_remember_tables t70-dm
loop=$(loop_create 32M)
step "volumes: $dmdev (dm-snapshot, ext4 on $mnt) and $loop (test provider)"

providers=$(snapsetctl --json providers)
assert_eq "$(jq -r '.providers[] | select(.name == "test") | .state' <<<"$providers")" loaded "test provider state"
assert_eq "$(jq -r '.providers[] | select(.name == "dm-snapshot") | .usable' <<<"$providers")" true "dm-snapshot usable"

set_control() {
	jq -n --arg l "$loop" --argjson m "$1" '{volumes: [$l], methods: $m}' >"$control"
	: >"$state"
}

# Every snapshot the test provider began was aborted (or recovered, after a restart).
test_side_aborted() {
	local what=$1
	python3 - "$state" "$what" <<'PY'
import json, sys
entries = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
began = {e["snapshotId"] for e in entries if e["method"] == "BeginPrepareSnapshot"}
aborted = set()
for e in entries:
    # Recover: what a restarted snapsetd asks after the previous one was killed.
    if e["method"] in ("AbortSnapshots", "Recover"):
        aborted.update(e.get("snapshots", []))
if began - aborted:
    sys.exit("%s: the test provider began %s and was never asked to abort it" % (sys.argv[2], began - aborted))
PY
}

after_failure() {
	local label=$1
	snapset_assert_clean "$label" "$cowdir" t70-dm
	fs_not_frozen "$mnt"
	[[ $(sha "$mnt/data") == "$sum" ]] || fail "$label: the origin's data changed"
	[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "$label: a set is listed: $(snapsetctl list 2>&1)"
	test_side_aborted "$label"
	step "ok: $label: nothing left on either side"
}

# --- success -----------------------------------------------------------------------------------
set_control '{}'
snapset_capture c snapsetctl --json create "$dmdev" "$loop:provider=test"
[[ $c_rc == 0 ]] || fail "mixed set: exit $c_rc: $c_err"
assert_eq "$(jq -r '[.snapshots[].provider] | sort | join(",")' <<<"$c_out")" "dm-snapshot,test" "providers of the set"
set_id=$(jq -r .id <<<"$c_out")
grep -q '"method": "CommitSnapshots"' "$state" || fail "the test provider was not asked to commit"
assert_success snapsetctl delete "$set_id"
grep -q '"method": "DeleteSnapshot"' "$state" || fail "the test provider was not asked to delete its snapshot"
snapset_assert_clean "after delete" "$cowdir" t70-dm

# --- failure on the external side --------------------------------------------------------------
for rule in '{"CommitSnapshots": {"hresult": 2147500037}}' \
	'{"HoldWrites": {"action": "crash"}}' \
	'{"PreCommitSnapshots": {"action": "hang"}}'; do
	set_control "$rule"
	snapset_capture c snapsetctl --json create "$dmdev" "$loop:provider=test"
	[[ $c_rc != 0 ]] || fail "$rule: the set was created"
	assert_contains "$c_err$c_out" VSS_E_UNEXPECTED_PROVIDER_ERROR "$rule: error"
	after_failure "test provider: $rule"
done

# --- failure on the dm-snapshot side ------------------------------------------------------------
# The loop device first, so that the test provider has begun when dm-snapshot fails.
set_control '{}'
snapset_capture c snapsetctl --json create "$loop:provider=test" "$dmdev:cow-size=1G"
[[ $c_rc != 0 ]] || fail "dm side: the set was created"
assert_contains "$c_err$c_out" VSS_E_INSUFFICIENT_STORAGE "dm side: error"
grep -q '"method": "BeginPrepareSnapshot"' "$state" || fail "dm side: the test provider never began"
after_failure "dm-snapshot: COW store does not fit"

# --- cut off at the hold deadline -------------------------------------------------------------
# HoldTimeoutSec=3, and the test provider asleep in CommitSnapshots, or blocked (D state) writing
# into the frozen ext4 of the set: writes flow again at the deadline plus a small margin, the code
# is VSS_E_HOLD_WRITES_TIMEOUT, and the provider, killed without being waited for, is reaped later.
snapset_conf "[Daemon]
ProviderDirectory=$tp/providers.d

[Limits]
HoldTimeoutSec=3

[Storage]
CowDirectory=$cowdir
DefaultCowSize=4M"
blocks=$SNAPSET_VM_TMP/blocks-70
margin=$(awk -v s="$(scaled 2)" 'BEGIN { printf "%d", s * 1000000 }')
for rule in '{"CommitSnapshots": {"sleepMs": 60000}}' \
	"{\"CommitSnapshots\": {\"action\": \"write\", \"path\": \"$mnt/.written-in-the-window\"}}"; do
	set_control "$rule"
	writer=$(seq_writer_start "$blocks" "$mnt/seq")
	t0=$(now_usec)
	snapset_capture c snapsetctl --json create "$dmdev" "$loop:provider=test"
	t1=$(now_usec)
	seq_writer_stop "$writer"
	[[ $c_rc != 0 ]] || fail "$rule: the set was created past HoldTimeoutSec=3"
	assert_eq "$(jq -r .vssName <<<"$c_out")" VSS_E_HOLD_WRITES_TIMEOUT "$rule: the code"
	worst=$(seq_max_block "$blocks" "$t0" "$t1")
	((worst <= 3000000 + margin)) || fail "$rule: writes were held $worst us (HoldTimeoutSec=3 plus $margin us allowed)"
	step "ok: $rule: VSS_E_HOLD_WRITES_TIMEOUT in $(((t1 - t0) / 1000)) ms; writes blocked at most $worst us (limit 3 s + $((margin / 1000)) ms)"
	after_failure "test provider: $rule"
done

# --- snapsetd killed from outside while the provider stalls in CommitSnapshots ---------------
# Every filesystem of the set takes a write again within 1 s (scaled) of the SIGKILL: the thaw
# guardian's doing, not the provider's nor the restart's.
set_control '{"CommitSnapshots": {"sleepMs": 20000}}'
snapsetctl --json create "$dmdev" "$loop:provider=test" >/dev/null 2>&1 &
creator=$!
for _ in $(seq "$(scaled 100)"); do
	grep -q '"method": "CommitSnapshots"' "$state" && break
	sleep 0.1
done
grep -q '"method": "CommitSnapshots"' "$state" || fail "kill from outside: the provider never got CommitSnapshots"
pid=$(systemctl show -P MainPID snapsetd.service)
t0=$(now_usec)
kill -KILL "$pid"
fs_not_frozen "$mnt"
t1=$(now_usec)
wait "$creator" || true
limit=$(awk -v s="$(scaled 1)" 'BEGIN { printf "%d", s * 1000000 }')
((t1 - t0 <= limit)) || fail "kill from outside: the set's ext4 took a write $((t1 - t0)) us after the SIGKILL (limit $limit us)"
for _ in $(seq 100); do
	snapsetctl status >/dev/null 2>&1 && break
	sleep 0.2
done
step "ok: snapsetd killed while the provider stalled in CommitSnapshots: writable $(((t1 - t0) / 1000)) ms later (limit $((limit / 1000)) ms)"
after_failure "killed from outside while the provider stalled"

step "mixed providers: all cases passed"
