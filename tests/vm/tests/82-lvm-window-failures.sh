#!/bin/bash
# vm-kernels: all
# LVM inside the freeze window, when things go wrong and where it must not write:
#   - an lvm command that fails inside the window (made to fail for real with an argument lvm
#     refuses, SNAPSETD_TEST_LVM_FAIL) on the first and on the last LV of a set: the error names
#     the volume and carries lvm's message; everything is undone: no snapshot LV (classic or
#     thin) or device left, nothing suspended or frozen, the origins' tables as before, the thin
#     pool's transaction ids agreeing, and the journal record written after the thaw;
#   - snapsetd killed inside the window (SNAPSETD_TEST_HOOKS=kill=committing, the origins held,
#     the COW LVs made): systemd restarts it, the restart resumes the origins, thaws, and only
#     then (lvm needs thawed filesystems) removes what the set made;
#   - the hold failing inside the provider on the second LV, the first one's origin already
#     suspended (SNAPSETD_TEST_HOOKS=fail-inside=holding:1): undone, nothing left;
#   - an LV removed between AddToSnapshotSet and DoSnapshotSet: VSS_E_OBJECT_NOT_FOUND, nothing
#     left;
#   - a volume group whose lock another program holds: VSS_E_BAD_STATE, naming that program,
#     after snapsetd tried again for a while; nothing left;
#   - a set that includes the filesystem holding /etc/lvm (a directory of one of the set's LVs
#     bind-mounted on /etc/lvm): it completes within its hold timeout, and /etc/lvm gets its
#     backup after the thaw.
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvm dmsetup mkfs.ext4 jq
modprobe dm-snapshot

cowdir=$(snapset_cow_dir 64M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=8M
[Limits]
FlushTimeoutSec=$(scaled 20)
HoldTimeoutSec=$(scaled 30 | awk '{ print ($1 > 120) ? 120 : $1 }')"

vg=snap82
lvm_vg $vg "$(scratch_disk 0)"
lvcreate -qq -y --type thin-pool -L 128M -n pool $vg
declare -A mnt
for lv in c0 c1 etc; do
	lvcreate -qq -y -L 24M -n $lv $vg
done
lvcreate -qq -y -V 32M --thin -n t0 $vg/pool
lvcreate -qq -y -L 16M -n raw $vg
for lv in c0 c1 t0 etc; do
	mkfs.ext4 -q /dev/$vg/$lv
	mnt[$lv]=$(mount_tmp /dev/$vg/$lv)
	echo "$lv before" >"${mnt[$lv]}/f"
done
sync
names=($vg-c0 $vg-c1 $vg-t0)
snapset_remember_tables "${names[@]}"

# --- an lvm command failing inside the window ------------------------------------

fail_on() {
	local target=$1 since out
	systemctl set-environment "SNAPSETD_TEST_LVM_FAIL=$vg/$target"
	defer "systemctl unset-environment SNAPSETD_TEST_LVM_FAIL"
	snapset_restart
	since=$(now_usec)
	snapset_capture x snapsetctl --json create /dev/$vg/c0 /dev/$vg/t0 /dev/$vg/c1
	((x_rc != 0)) || fail "failure on $target: the set was created: $x_out"
	out=$x_out
	assert_eq "$(jq -r .method <<<"$out")" CommitSnapshots "failure on $target: the failed method"
	assert_eq "$(jq -r .volume <<<"$out")" "/dev/$vg/$target" "failure on $target: the volume named"
	assert_contains "$(jq -r .message <<<"$out")" "failed (exit status" "failure on $target: the message"
	# lvm's own words ("Invalid tag" from lvcreate, "unrecognized option" from lvconvert).
	[[ $(jq -r .message <<<"$out") =~ (Invalid\ tag|unrecognized\ option) ]] ||
		fail "failure on $target: lvm's own message is not in: $(jq -r .message <<<"$out")"
	fs_not_frozen "${mnt[c0]}" "${mnt[c1]}" "${mnt[t0]}"
	lvm_assert_clean "failure on $target" $vg
	snapset_assert_clean "failure on $target" "$cowdir" "${names[@]}"
	for lv in c0 c1 t0; do
		assert_eq "$(cat "${mnt[$lv]}/f")" "$lv before" "failure on $target: $lv's data"
	done
	# The record of the failure, and that it came after the thaw (no logging inside the window).
	local rec
	rec=$(snapset_journal "$since" | jq -c 'select(.MESSAGE | test("failed in CommitSnapshots"))' | head -n 1)
	[[ -n $rec ]] || fail "failure on $target: no journal record of the failed commit"
	assert_eq "$(jq -r .SNAPSET_VOLUME <<<"$rec")" "/dev/$vg/$target" "failure on $target: the journal's SNAPSET_VOLUME"
	# Queued while frozen, written after the thaw: it reached the journal later than it happened.
	[[ $(jq -r '(.__REALTIME_TIMESTAMP | tonumber) > (.SNAPSET_EVENT_USEC | tonumber)' <<<"$rec") == true ]] ||
		fail "failure on $target: the journal record was not queued (arrived $(jq -r .__REALTIME_TIMESTAMP <<<"$rec"), happened $(jq -r .SNAPSET_EVENT_USEC <<<"$rec"))"
	step "ok: failure on $target inside the window: undone, nothing left, journal: $(jq -r .MESSAGE <<<"$rec" | cut -c1-160)"
	systemctl unset-environment SNAPSETD_TEST_LVM_FAIL
}
fail_on c0
fail_on c1
snapset_restart

# --- snapsetd killed inside the window ----------------------------------------------

snapset_hooks "kill=committing"
pid_before=$(systemctl show -P MainPID snapsetd.service)
snapset_capture k snapsetctl create /dev/$vg/c0 /dev/$vg/t0
((k_rc != 0)) || fail "kill=committing: the set was created"
for _ in $(seq 100); do
	pid=$(systemctl show -P MainPID snapsetd.service)
	[[ $pid != 0 && $pid != "$pid_before" ]] && snapsetctl status >/dev/null 2>&1 && break
	sleep 0.2
done
[[ $pid != 0 && $pid != "$pid_before" ]] || fail "kill=committing: snapsetd was not restarted"
fs_not_frozen "${mnt[c0]}" "${mnt[t0]}"
lvm_assert_clean "kill=committing" $vg
snapset_assert_clean "kill=committing" "$cowdir" "${names[@]}"
for lv in c0 t0; do
	assert_eq "$(cat "${mnt[$lv]}/f")" "$lv before" "kill=committing: $lv's data"
done
step "ok: killed inside the window: restarted, resumed, thawed, and nothing of the set left"

# --- a hold failing half-way inside the provider ----------------------------------
# c0's origin already suspended by snapsetd when the hold of c1 fails: c0 is resumed, and nothing
# is left.
snapset_hooks "fail-inside=holding:1"
snapset_capture h snapsetctl --json create /dev/$vg/c0 /dev/$vg/c1
((h_rc != 0)) || fail "fail-inside=holding:1: the set was created"
assert_eq "$(jq -r .method <<<"$h_out")" HoldWrites "fail-inside=holding:1: the failed method"
assert_eq "$(jq -r .volume <<<"$h_out")" "/dev/$vg/c1" "fail-inside=holding:1: the volume named"
fs_not_frozen "${mnt[c0]}" "${mnt[c1]}"
lvm_assert_clean "fail-inside=holding:1" $vg
snapset_assert_clean "fail-inside=holding:1" "$cowdir" "${names[@]}"
step "ok: a hold failing on c1 with c0 suspended: c0 resumed, nothing left"
snapset_hooks ""

# --- an LV removed between Add and Do --------------------------------------------

out=$(snapset_py "/dev/$vg/raw" "$vg/raw" <<'PY'
import subprocess
c = conn()
s = call(c, "StartSnapshotSet", {"context": "persistent"})["parameters"]["setId"]
a = call(c, "AddToSnapshotSet", {"setId": s, "volume": sys.argv[1]})
assert "error" not in a, a
subprocess.run(["lvremove", "-qq", "-f", sys.argv[2]], check=True)
d = call(c, "DoSnapshotSet", {"setId": s})
print(json.dumps(d))
PY
)
assert_eq "$(jq -r .error <<<"$out")" io.snapset.Manager.ObjectNotFound "DoSnapshotSet after the LV was removed"
assert_contains "$(jq -r .parameters.message <<<"$out")" "$vg/raw is gone" "its message"
lvm_assert_clean "after the removed LV" $vg
step "ok: an LV removed between Add and Do: ObjectNotFound, nothing left"

# --- a volume group locked by someone else -----------------------------------------

# LVM's own lock file for the VG, locked exclusively with flock(2) as lvm does, by a process that
# holds it itself (with flock(1), the lock would belong to a process already gone, and live on in
# its child): /proc/locks names it, and killing it releases the lock.
/usr/bin/python3 -c 'import fcntl, sys, time
f = open(sys.argv[1], "w")
fcntl.flock(f, fcntl.LOCK_EX)
time.sleep(600)' "/run/lock/lvm/V_$vg" &
locker=$!
defer "kill $locker 2>/dev/null || true"
for _ in $(seq "$(scaled 50)"); do
	grep -q "FLOCK .* WRITE $locker " /proc/locks && break
	sleep 0.2
done
grep -q "FLOCK .* WRITE $locker " /proc/locks || fail "the test's locker ($locker) did not take the VG's lock"
snapset_capture l snapsetctl --json create /dev/$vg/c0
kill "$locker" 2>/dev/null || true
wait "$locker" 2>/dev/null || true
((l_rc != 0)) || fail "a set was created while its VG was locked"
assert_eq "$(jq -r .vssName <<<"$l_out")" VSS_E_BAD_STATE "a locked VG"
assert_contains "$(jq -r .message <<<"$l_out")" "lock is held by pid $locker (/usr/bin/python3" "a locked VG: the message"
lvm_assert_clean "after the locked VG" $vg
step "ok: a locked VG: $(jq -r .message <<<"$l_out" | cut -c1-200)"

# --- /etc/lvm on a volume of the set ----------------------------------------------

mkdir -p "${mnt[etc]}/lvm"
cp -a /etc/lvm/. "${mnt[etc]}/lvm/"
mount --bind "${mnt[etc]}/lvm" /etc/lvm
defer "umount /etc/lvm"
rm -f /etc/lvm/backup/$vg
t0=$(now_usec)
snapset_capture e snapsetctl --json create /dev/$vg/etc /dev/$vg/c0
t1=$(now_usec)
((e_rc == 0)) || fail "a set with /etc/lvm on one of its volumes failed: $e_err $e_out"
step "ok: a set holding /etc/lvm completed in $(((t1 - t0) / 1000)) ms (window $(jq -r .freezeWindowUsec <<<"$e_out") us)"
[[ -s /etc/lvm/backup/$vg ]] || fail "no backup of $vg in /etc/lvm after the set (vgcfgbackup after the thaw)"
step "ok: /etc/lvm/backup/$vg written after the thaw"
fs_not_frozen "${mnt[etc]}" /etc/lvm
snapsetctl delete "$(jq -r .id <<<"$e_out")" >/dev/null
lvm_assert_clean "after the /etc/lvm set" $vg
