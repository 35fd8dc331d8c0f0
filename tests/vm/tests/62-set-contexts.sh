#!/bin/bash
# The two contexts of a set, through the real daemon:
#   backup      a python3 client holds a varlink connection, calls CreateSnapshotSet with
#               "context": "backup", sees the snapshot device, closes the connection: within a
#               second the set and its devices are gone, with nothing left behind.
#   persistent  "snapsetctl create" (the CLI's context); the set survives a restart of snapsetd
#               (still listed, device still there, the snapshot shows its instant, the origin
#               the newer data), and is deleted with nothing left. A reboot is test 69's.
# Uses /dev/vdd: the origin (dm-linear t62-origin, ext4) on its first 640 MiB, and on the rest a
# filesystem (t62-store) with the COW directory and snapsetd's state directory. Wipes /dev/vdd
# at the end.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup mkfs.ext4 jq
modprobe dm-snapshot
modprobe loop

disk=$(scratch_disk 3)
origin_len=$((640 * 2048))
store_len=$(($(sectors "$disk") - origin_len))
store=/mnt/t62-store
conf="[Daemon]
StateDirectory=$store/state
[Storage]
CowDirectory=$store/cow
DefaultCowSize=32M"

# The origin and the store, as at every boot (same names, same tables).
setup_devices() {
	dmsetup create t62-origin --table "0 $origin_len linear $disk 0"
	dmsetup create t62-store --table "0 $store_len linear $disk $origin_len"
	udevadm settle
	snapset_remember_tables t62-origin
}

teardown() {
	local id
	for id in $(snapsetctl --json list 2>/dev/null | jq -r .id); do
		snapsetctl delete "$id" >/dev/null 2>&1 || true
	done
	umount -q "$store" 2>/dev/null || true
	dmsetup remove --retry t62-origin 2>/dev/null || true
	dmsetup remove --retry t62-store 2>/dev/null || true
	scratch_wipe "$disk"
}

case $SNAPSET_VM_BOOT in
1)
	scratch_wipe "$disk"
	setup_devices
	defer teardown
	mkfs.ext4 -q /dev/mapper/t62-origin
	mkfs.ext4 -q /dev/mapper/t62-store
	mkdir -p "$store"
	mount /dev/mapper/t62-store "$store"
	mkdir -p "$store/cow" "$store/state"
	mnt=$(mount_tmp /dev/mapper/t62-origin)
	snapset_conf "$conf"
	dev=/dev/mapper/t62-origin

	# --- backup context ---------------------------------------------------------
	step "--- backup context: a client holds its connection ---"
	echo "backup era" >"$mnt/marker"
	sync
	out=$(snapset_py "$dev" <<'PY'
import subprocess
dev = sys.argv[1]
c = conn()
r = call(c, "CreateSnapshotSet", {"volumes": [{"volume": dev}], "context": "backup"})
if "error" in r:
    sys.exit("CreateSnapshotSet failed: %s" % json.dumps(r))
s = r["parameters"]["set"]
snapdev = s["snapshots"][0]["device"]
assert s["context"] == "backup", s
# Another client sees the set while the owner holds its connection.
o = conn()
send(o, "ListSnapshotSets", more=True)
ids = []
while True:
    m = recv(o)
    if "error" in m:
        sys.exit("ListSnapshotSets: %s" % json.dumps(m))
    if m.get("parameters", {}).get("set"):
        ids.append(m["parameters"]["set"]["id"])
    if not m.get("continues"):
        break
o.close()
print("SET", s["id"], snapdev, "listed" if s["id"] in ids else "notlisted")
print("BLOCK", "yes" if os.path.exists(snapdev) and os.stat(snapdev).st_mode & 0o170000 == 0o060000 else "no")
sys.stdout.flush()
t = time.monotonic()
c.close()
gone = None
while time.monotonic() - t < 5:
    if not os.path.exists(snapdev) and subprocess.run(["dmsetup", "info", snapdev.split("/")[-1]],
                                                      capture_output=True).returncode != 0:
        gone = time.monotonic() - t
        break
    time.sleep(0.02)
print("GONE", "%.3f" % gone if gone is not None else "never")
PY
	) || fail "backup client: $out"
	printf '%s\n' "$out"
	read -r _ bid bdev listed < <(grep '^SET' <<<"$out")
	assert_eq "$listed" listed "backup set $bid listed to another client while its owner is connected"
	assert_eq "$(awk '/^BLOCK/ { print $2 }' <<<"$out")" yes "snapshot device $bdev is a block device while the owner is connected"
	gone=$(awk '/^GONE/ { print $2 }' <<<"$out")
	[[ $gone != never ]] || fail "backup set $bid: $bdev still there 5 s after its owner closed the connection"
	# The contract is "at once" (within a second on real hardware); under TCG, and with other VMs
	# on the host, a time limit would only measure the host: the limit is the client's 5 s, the
	# time is printed.
	step "ok: backup set $bid: device gone ${gone}s after the owner closed its connection$(awk -v g="$gone" 'BEGIN { if (g >= 1.0) print " (note: over 1 s)" }')"
	[[ -z $(snapsetctl --json list 2>/dev/null) ]] || fail "backup set still listed after its owner left: $(snapsetctl list)"
	snapset_assert_clean "backup set after its owner left" "$store/cow" t62-origin
	step "ok: backup set: not listed, no snapset device, loop device or COW file left, origin table as before"

	# --- persistent: a daemon restart ------------------------------------------------
	step "--- persistent context: snapsetctl create, restart snapsetd ---"
	echo "persistent era" >"$mnt/marker"
	random_file "$mnt/data" 4
	sync
	data_sha=$(sha "$mnt/data")
	snapset_capture c snapsetctl --json create "$dev"
	((c_rc == 0)) || fail "snapsetctl create exited with $c_rc: $c_err"
	id=$(jq -r .id <<<"$c_out")
	sdev=$(jq -r '.snapshots[0].device' <<<"$c_out")
	assert_eq "$(jq -r .context <<<"$c_out")" persistent "context of a set made by snapsetctl"
	echo "after the snapshot" >"$mnt/marker"
	dd if=/dev/urandom of="$mnt/data" bs=1M count=4 conv=notrunc,fsync status=none
	sync
	origin_sha=$(sha "$mnt/data")
	snapset_restart
	assert_eq "$(snapsetctl --json list | jq -r .id)" "$id" "set listed after a restart of snapsetd"
	[[ -b $sdev ]] || fail "$sdev gone after a restart of snapsetd"
	smnt=$SNAPSET_VM_TMP/snap
	mkdir -p "$smnt"
	mount -o ro,noload "$sdev" "$smnt"
	defer "! mountpoint -q $smnt || umount $smnt"
	assert_eq "$(cat "$smnt/marker")" "persistent era" "snapshot marker after a daemon restart"
	assert_eq "$(sha "$smnt/data")" "$data_sha" "snapshot data after a daemon restart"
	assert_eq "$(cat "$mnt/marker")" "after the snapshot" "origin marker after a daemon restart"
	assert_eq "$(sha "$mnt/data")" "$origin_sha" "origin data after a daemon restart"
	umount "$smnt"
	assert_success snapsetctl delete "$id"
	# The origin's table is the linear one again.
	dmsetup table t62-origin >"$SNAPSET_VM_TMP/.table.t62-origin.now"
	assert_eq "$(cat "$SNAPSET_VM_TMP/.table.t62-origin.now")" "0 $origin_len linear $(awk '{ print $4 }' <"$SNAPSET_VM_TMP/.table.t62-origin") 0" "origin table after delete"
	snapset_assert_clean "after deleting the set" "$store/cow" t62-origin
	step "ok: persistent set: survived a daemon restart with its instant; deleted; nothing left"
	;;
*)
	fail "unexpected SNAPSET_VM_BOOT=$SNAPSET_VM_BOOT (this test does not reboot)"
	;;
esac
