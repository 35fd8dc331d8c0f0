#!/bin/bash
# A snapshot holds what the user thinks it holds: what another tool changes between
# AddToSnapshotSet and DoSnapshotSet fails the set instead of being snapshotted (or frozen) wrong.
#   foreign  another tool loads its own inactive table into the origin (as cryptsetup refresh,
#            kpartx or dmsetup reload would) after the set prepared it: DoSnapshotSet fails with
#            VSS_E_BAD_STATE naming the device and the foreign table's target, the origin still
#            runs its own table, nothing of the set is left.
#   covered  a filesystem is mounted over the mountpoint of a volume of the set: DoSnapshotSet
#            fails with VSS_E_BAD_STATE naming the mountpoint, and nothing is frozen (neither the
#            volume's filesystem nor the one on top).
#   stores   no COW store on a filesystem of the set: CowDirectory= on a volume of the set is
#            refused at AddToSnapshotSet (E_INVALIDARG naming the directory and the volume);
#            and after CowDirectory= changed, a set of an origin whose older snapshot keeps its
#            store on the other volume of the set is refused (E_INVALIDARG naming that store).
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 mkfs.xfs jq losetup
modprobe dm-snapshot
modprobe loop

cowdir=$(snapset_cow_dir 128M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=8M"
snapset_volume_pair t66

# Start, Add DEV, then run the shell command in argv[2], then Do: prints Do's reply.
add_meddle_do() {
	snapset_py "$@" <<'PY'
import subprocess
dev, meddle = sys.argv[1], sys.argv[2]
c = conn()
sid = call(c, "StartSnapshotSet", {"context": "persistent"})["parameters"]["setId"]
r = call(c, "AddToSnapshotSet", {"setId": sid, "volume": dev})
if "error" in r:
    sys.exit("AddToSnapshotSet failed: %s" % r)
subprocess.run(["sh", "-c", meddle], check=True)
print(json.dumps(call(c, "DoSnapshotSet", {"setId": sid})))
PY
}

# --- a foreign inactive table -------------------------------------------------------
step "--- another tool loads its own table into ${names[0]} between Add and Do ---"
foreign=$(cat "$SNAPSET_VM_TMP/.table.${names[0]}")
r=$(add_meddle_do "${devs[0]}" "dmsetup load ${names[0]} --table '$foreign'")
step "DoSnapshotSet: $r"
assert_eq "$(jq -r '.parameters.vssName' <<<"$r")" VSS_E_BAD_STATE "the set fails"
assert_contains "$(jq -r '.parameters.message' <<<"$r")" "inactive table of ${names[0]} is not the one snapset loaded (its target is linear)" \
	"the message names the device and the foreign table's target"
[[ $(dmsetup info "${names[0]}") == *INACTIVE* ]] || fail "the other tool's inactive table was dropped: it is not snapset's"
dmsetup clear "${names[0]}"
snapset_assert_clean "after the foreign table" "$cowdir" "${names[@]}"
[[ $(sha "${mnts[0]}/data") == "${sums[0]}" ]] || fail "the data of ${devs[0]} changed"
step "ok: refused with the device and the foreign target named; the origin runs its own table; nothing left"

# --- a filesystem mounted over a volume's mountpoint ---------------------------------
step "--- tmpfs mounted over ${mnts[1]} between Add and Do ---"
r=$(add_meddle_do "${devs[1]}" "mount -t tmpfs t66-cover ${mnts[1]}")
defer "umount ${mnts[1]} 2>/dev/null || true"
step "DoSnapshotSet: $r"
assert_eq "$(jq -r '.parameters.vssName' <<<"$r")" VSS_E_BAD_STATE "the set fails"
assert_contains "$(jq -r '.parameters.message' <<<"$r")" "mounted at ${mnts[1]}, but that path now leads to another filesystem" \
	"the message names the mountpoint"
fs_not_frozen "${mnts[1]}" /
umount "${mnts[1]}"
fs_not_frozen "${mnts[1]}"
snapset_assert_clean "after the over-mount" "$cowdir" "${names[@]}"
step "ok: refused, naming the covered mountpoint; nothing frozen; nothing left"

# --- COW stores on a filesystem of the set ------------------------------------------------
step "--- CowDirectory= on a volume of the set ---"
mkdir -p "${mnts[1]}/cow"
snapset_conf "[Storage]
CowDirectory=${mnts[1]}/cow
DefaultCowSize=8M"
snapset_capture c snapsetctl create "${devs[1]}"
((c_rc != 0)) || fail "a set with its COW directory on its own volume was created"
assert_contains "$c_err" "E_INVALIDARG" "the code"
assert_contains "$c_err" "copy-on-write directory ${mnts[1]}/cow is on" "the message names the directory"
step "ok: refused at Add: $c_err"

step "--- an older snapshot's store on a volume of a new set ---"
# v0's snapshot, its store on v1 (not in that set): fine.
snapset_create older "${devs[0]}"
older=$older_id
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=8M"
snapset_capture c snapsetctl create "${devs[0]}" "${devs[1]}"
((c_rc != 0)) || fail "a set of ${devs[0]} and ${devs[1]} was created, with an older store of ${devs[0]} on ${devs[1]}"
assert_contains "$c_err" "E_INVALIDARG" "the code"
assert_contains "$c_err" "an older snapshot of" "the message says which store"
assert_contains "$c_err" "${mnts[1]}/cow" "the message names the store's place"
fs_not_frozen "${mnts[@]}"
step "ok: refused: $c_err"
snapset_capture d snapsetctl delete "$older"
((d_rc == 0)) || fail "deleting the older set failed: $d_err"
snapset_assert_clean "at the end" "$cowdir" "${names[@]}"
[[ -z $(ls -A "${mnts[1]}/cow") ]] || fail "a store is left in ${mnts[1]}/cow"
step "ok: nothing left"
