#!/bin/bash
# Nothing is forgotten: what an abort could not undo, and what no record names.
#   held   a set in creation whose snapshot device is held open by another process is aborted:
#          the abort cannot remove it, so its record is kept; GetStatus lists it in
#          needsAttention and "snapsetctl status" says so. Once the holder has gone,
#          "snapsetctl cleanup" undoes it (undone 1, nothing remaining) and nothing is left.
#   sweep  leftovers of interrupted creations that no record names, made by hand as a crash in
#          begin_prepare would leave them: a table-less snapset-<id> device, a COW file with a
#          loop device over it, a snapset-real-* device and an inactive snapshot-origin table
#          loaded into an origin. A restart removes each, names each in the journal, and the
#          origin's table and data are as before. A complete snapshot whose record was lost is
#          kept and reported instead.
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
snapset_volume_pair t65

# --- a failed abort keeps its record until cleanup ---------------------------------
step "--- abort with the snapshot device held open ---"
holder_fifo=$SNAPSET_VM_TMP/holder
mkfifo "$holder_fifo"
snapset_py "${devs[0]}" "$holder_fifo" >"$SNAPSET_VM_TMP/abort.json" 2>&1 <<'PY' &
dev, fifo = sys.argv[1], sys.argv[2]
c = conn()
sid = call(c, "StartSnapshotSet", {"context": "persistent"})["parameters"]["setId"]
r = call(c, "AddToSnapshotSet", {"setId": sid, "volume": dev})
snap = r["parameters"]["snapshotId"]
# Another process holds the snapshot device open (the test's shell, through the fifo).
with open(fifo, "w") as f:
    f.write(snap + "\n")
time.sleep(0.5)
while not os.path.exists(fifo + ".held"):
    time.sleep(0.1)
r = call(c, "AbortSnapshotSet", {"setId": sid})
print(json.dumps({"set": sid, "snapshot": snap, "abort": r}))
PY
py_pid=$!
read -r snap <"$holder_fifo"
# Without a live table udev makes no /dev/mapper node: the kernel's /dev/dm-N is there.
minor=$(dmsetup info -c --noheadings -o minor "snapset-$snap")
exec {hold_fd}<"/dev/dm-$((minor))"
touch "$holder_fifo.held"
wait "$py_pid" || fail "the client failed: $(cat "$SNAPSET_VM_TMP/abort.json")"
step "AbortSnapshotSet with snapset-$snap held open: $(cat "$SNAPSET_VM_TMP/abort.json")"
set_id=$(snapsetctl --json status | jq -r '.needsAttention[0].setId // empty')
[[ -n $set_id ]] || fail "no set needs attention after an abort that could not remove a held device: $(snapsetctl --json status)"
message=$(snapsetctl --json status | jq -r '.needsAttention[0].message')
assert_contains "$message" "snapset-$snap" "why the record is kept names the device"
snapset_capture s snapsetctl status
assert_contains "$s_out" "attention" "snapsetctl status tells the administrator"
step "ok: the abort's record is kept: $message"

# Still held: cleanup cannot finish it, and says so.
snapset_capture c snapsetctl --json cleanup
assert_eq "$(jq -r '.remaining | length' <<<"$c_out")" 1 "cleanup while the device is still held leaves it"
exec {hold_fd}<&-
snapset_capture c snapsetctl --json cleanup
((c_rc == 0)) || fail "snapsetctl cleanup exited with $c_rc: $c_err"
assert_eq "$(jq -c '[.undone, (.remaining | length)]' <<<"$c_out")" "[1,0]" "cleanup once the holder has gone"
assert_eq "$(snapsetctl --json status | jq '.needsAttention | length')" 0 "nothing needs attention any more"
snapset_assert_clean "after cleanup" "$cowdir" "${names[@]}"
step "ok: after the holder went, cleanup undid it; nothing left, origin tables as before"

# --- leftovers no record names ------------------------------------------------------
step "--- leftovers of interrupted creations, made by hand ---"
# A complete snapshot whose record is lost (its state file removed while snapsetd is stopped).
snapset_create kept "${devs[1]}"
kept_set=$kept_id
kept_snap=$(jq -r '.snapshots[0].id' <<<"$kept_json")
systemctl stop snapsetd.service
mv "/var/lib/snapset/sets/$kept_set.json" "$SNAPSET_VM_TMP/kept-set.json"
defer "mv $SNAPSET_VM_TMP/kept-set.json /var/lib/snapset/sets/$kept_set.json 2>/dev/null; systemctl restart snapsetd; snapsetctl delete $kept_set >/dev/null 2>&1 || true"

id1=$(cat /proc/sys/kernel/random/uuid) id2=$(cat /proc/sys/kernel/random/uuid)
dmsetup create "snapset-$id1" -u "SNAPSET-$id1" --notable
truncate -s 8M "$cowdir/$id2.cow"
loop=$(losetup -f --show "$cowdir/$id2.cow")
dmsetup create snapset-real-t65-left -u SNAPSET-real-t65-left --table "$(dmsetup table t65-v0)"
real=$(dmsetup info -c --noheadings -o major,minor --separator : snapset-real-t65-left)
dmsetup load t65-v0 --table "0 $(blockdev --getsz "${devs[0]}") snapshot-origin $real"
[[ $(dmsetup info t65-v0) == *INACTIVE* ]] || fail "the hand-made inactive table did not load"

t0=$(now_usec)
snapset_restart
journal=$(snapset_journal "$t0" | jq -r .MESSAGE)
for what in "removed snapset-$id1" "dropped the inactive snapshot-origin table of t65-v0" \
	"removed snapset-real-t65-left" "removed the COW file $cowdir/$id2.cow" "detached $loop"; do
	assert_contains "$journal" "Leftover: $what" "the journal names the leftover"
done
assert_contains "$journal" "(snapshot $kept_snap) has no record" "the complete snapshot is reported"
[[ -z $(dmsetup ls | awk -v a="snapset-$id1" '$1 == a || $1 == "snapset-real-t65-left"') ]] ||
	fail "leftover devices are still there: $(dmsetup ls)"
[[ $(dmsetup info t65-v0) != *INACTIVE* ]] || fail "t65-v0 still has the inactive table"
[[ ! -e $cowdir/$id2.cow ]] || fail "the leftover COW file is still there"
! losetup "$loop" >/dev/null 2>&1 || fail "$loop is still attached"
dmsetup info "snapset-$kept_snap" >/dev/null || fail "the complete snapshot without a record was removed"
[[ $(sha "${mnts[0]}/data") == "${sums[0]}" ]] || fail "the origin's data changed"
step "ok: every leftover removed and named in the journal; the complete snapshot kept and reported"

# The lost record back: the complete snapshot is an ordinary set again, and is deleted.
systemctl stop snapsetd.service
mv "$SNAPSET_VM_TMP/kept-set.json" "/var/lib/snapset/sets/$kept_set.json"
snapset_restart
snapset_capture d snapsetctl delete "$kept_set"
((d_rc == 0)) || fail "deleting the set whose record came back failed: $d_err"
snapset_assert_clean "at the end" "$cowdir" "${names[@]}"
step "ok: nothing left at the end"
