#!/bin/bash
# dm-thin round trip, the way snapsetd's dm-thin provider commits: a thin-pool
# on loop devices, a thin volume with ext4 and data; FIFREEZE, suspend the thin
# volume with --nolockfs, "create_snap" on the pool, resume, FITHAW; overwrite
# the origin; the thin snapshot must show the old data, the origin the new.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd mkfs.ext4 fsfreeze dmsetup
modprobe dm-thin-pool

meta=$(loop_create 64M)
data=$(loop_create 512M)
# A fresh metadata device must start zeroed (the sparse file is); the pool
# formats it on first load.
block=128 # 64 KiB data blocks, in sectors
pool=$(dm_create thintest-pool "0 $(sectors "$data") thin-pool $meta $data $block 0")
dmsetup message thintest-pool 0 "create_thin 0"
virt=$((1024 * 1024 * 2)) # 1 GiB virtual, in sectors: thin volumes may overcommit
origin=$(dm_create thintest-origin "0 $virt thin $pool 0")
mkfs.ext4 -q "$origin"
mnt=$(mount_tmp "$origin")
random_file "$mnt/data" 8
echo "before the snapshot" >"$mnt/marker"
sync
old=$(sha "$mnt/data")
step "thin origin written: data sha256 ${old:0:16}..."

step "freeze, suspend --nolockfs, create_snap, resume, thaw"
fsfreeze -f "$mnt"
# The origin must be suspended while the pool records the snapshot, so that no
# write is in flight to blocks that are about to be shared.
if ! dmsetup suspend --nolockfs thintest-origin; then
	fsfreeze -u "$mnt"
	fail "dmsetup suspend --nolockfs on the frozen thin origin failed"
fi
snap_rc=0
dmsetup message thintest-pool 0 "create_snap 1 0" || snap_rc=$?
dmsetup resume thintest-origin
fsfreeze -u "$mnt"
((snap_rc == 0)) || fail "create_snap failed with $snap_rc"
step "ok: create_snap 1 0 succeeded"

snapdev=$(dm_create thintest-snap "0 $virt thin $pool 1")

step "overwrite the origin's data in place"
dd if=/dev/urandom of="$mnt/data" bs=1M count=8 conv=notrunc,fsync status=none
echo "after the snapshot" >"$mnt/marker"
sync
new=$(sha "$mnt/data")
assert_ne "$new" "$old" "origin data after the overwrite"

smnt=$(mount_tmp "$snapdev" ro)
assert_eq "$(sha "$smnt/data")" "$old" "thin snapshot: data sha256"
assert_eq "$(cat "$smnt/marker")" "before the snapshot" "thin snapshot: marker"
assert_eq "$(sha "$mnt/data")" "$new" "thin origin: data sha256"
assert_eq "$(cat "$mnt/marker")" "after the snapshot" "thin origin: marker"

# Both thin devices are in the pool; the overwrite broke sharing, so the pool
# holds more data blocks than the origin alone did.
status=$(dmsetup status thintest-pool)
step "pool status: $status"
used=$(awk '{ split($6, a, "/"); print a[1] }' <<<"$status")
((used > 8 * 1024 * 1024 / (block * 512))) ||
	fail "pool uses $used data blocks: the overwrite should have needed new blocks for the origin"
step "ok: pool uses $used data blocks of $((block * 512 / 1024)) KiB"

cleanup_now
[[ -z $(dmsetup ls | grep thintest || true) ]] || fail "dm devices left behind: $(dmsetup ls)"
step "ok: no thintest dm devices left"
