#!/bin/bash
# Using snapshots: 'snapsetctl exec' and 'snapsetctl expose' on real device-mapper snapshots, of a
# 3-volume set (ext4 and xfs taken by dm-snapshot, an ext4 on an LVM thin LV taken by lvm):
#   - exec: COMMAND sees each snapshot's files byte for byte as the origins were at the point in
#     time (the origins change while it runs), read-only with nosuid,nodev,noexec, xfs mounted
#     beside its mounted origin (nouuid); its exit status is passed through; the set is gone after
#     success, failure, COMMAND killed by a signal, and snapsetctl SIGKILLed;
#   - expose: the mount survives a restart of snapsetd; deleting it while a process works in it
#     is refused with VSS_E_VOLUME_IN_USE (exit 37) naming the process; unexpose removes mount
#     and directory.
# After each: no snapset-* device, LV or mount left, no set listed.
# x_out, x_err and x_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup lvcreate mkfs.ext4 mkfs.xfs findmnt jq sha256sum
modprobe dm-snapshot

cowdir=$(snapset_cow_dir 96M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=16M"

read -r dev_a mnt_a <<<"$(snapset_volume t71-a ext4 64M)"
read -r dev_b mnt_b <<<"$(snapset_volume t71-b xfs 300M)"
vg=snap71
lvm_vg $vg "$(scratch_disk 0)"
lvcreate -qq -y --type thin-pool -L 200M -n pool $vg
lvcreate -qq -y -V 64M --thin -n t0 $vg/pool
mkfs.ext4 -q /dev/$vg/t0
mnt_c=$(mount_tmp /dev/$vg/t0)
mnts=("$mnt_a" "$mnt_b" "$mnt_c")
sums=()
for m in "${mnts[@]}"; do
	random_file "$m/data" 2
	sums+=("$(sha "$m/data")")
done
sync
step "volumes: $dev_a (ext4), $dev_b (xfs), /dev/$vg/t0 (ext4 on a thin LV), each with 2 MiB of data"

nothing_left() {
	local what=$1 left
	left=$(snapsetctl --json list --sets)
	[[ -z $left ]] || fail "$what: sets left: $left"
	left=$(findmnt -rn -o TARGET | grep '^/run/snapset/mnt' || true)
	[[ -z $left ]] || fail "$what: mounts left: $left"
	left=$(find /run/snapset/mnt -mindepth 1 2>/dev/null || true)
	[[ -z $left ]] || fail "$what: directories left under /run/snapset/mnt: $left"
	lvm_assert_clean "$what" $vg
}

# --- exec: the point in time, the options, the exit status --------------------------------------

script='
for i in 1 2 3; do
	eval m=\$SNAPSET_MOUNT_$i
	sha256sum <"$m/data" | cut -d" " -f1
	findmnt -n -o FSTYPE,OPTIONS --mountpoint "$m"
done
for o in "$@"; do echo more >>"$o/data"; done      # the origins go on changing
for i in 1 2 3; do eval m=\$SNAPSET_MOUNT_$i; sha256sum <"$m/data" | cut -d" " -f1; done
touch "$SNAPSET_MOUNT_1/x" 2>/dev/null && echo WRITABLE
echo "$SNAPSET_COUNT $SNAPSET_SET_ID"
exit 7'
snapset_capture x snapsetctl --timeout="$(scaled 300)" exec "$mnt_a" "$mnt_b" "$mnt_c" -- sh -c "$script" sh "${mnts[@]}"
assert_eq "$x_rc" 7 "exec's exit status (COMMAND's own; stderr: $x_err)"
mapfile -t lines <<<"$x_out"
for i in 0 1 2; do
	assert_eq "${lines[i * 2]}" "${sums[i]}" "snapshot $((i + 1)): the data as it was at the point in time"
	assert_eq "${lines[i + 6]}" "${sums[i]}" "snapshot $((i + 1)): the data after the origin changed"
	opts=$(awk '{ print $2 }' <<<"${lines[i * 2 + 1]}")
	for o in ro nosuid nodev noexec; do
		[[ ,$opts, == *,$o,* ]] || fail "snapshot $((i + 1)) mounted without $o: ${lines[i * 2 + 1]}"
	done
done
[[ ${lines[3]} == xfs*nouuid* ]] || fail "the xfs snapshot is not mounted with nouuid: ${lines[3]}"
[[ $x_out != *WRITABLE* ]] || fail "a snapshot mounted by exec was writable"
[[ ${lines[9]} == "3 "* ]] || fail "SNAPSET_COUNT is not 3: ${lines[9]}"
[[ $(sha "$mnt_a/data") != "${sums[0]}" ]] || fail "the origin did not change (the test proves nothing)"
nothing_left "exec, COMMAND failed with 7"
step "ok: exec: every snapshot byte for byte the point in time while the origins changed, ro,nosuid,nodev,noexec (xfs nouuid beside its origin), exit 7 passed through, nothing left"

# --- exec: COMMAND killed, snapsetctl killed ----------------------------------------------------

snapset_capture x snapsetctl --timeout="$(scaled 300)" exec "$mnt_a" "$mnt_b" -- sh -c 'kill -TERM $$'
assert_eq "$x_rc" 143 "exec's exit status when COMMAND is killed by SIGTERM"
nothing_left "exec, COMMAND killed"

fifo=$SNAPSET_VM_TMP/t71.fifo
mkfifo "$fifo"
snapsetctl --timeout="$(scaled 300)" exec "$mnt_a" /dev/$vg/t0 -- sh -c "echo \$SNAPSET_MOUNT_1 >$fifo; exec sleep 600" &
ctl=$!
read -r exposed <"$fifo"
[[ $(findmnt -n -o TARGET --mountpoint "$exposed") == "$exposed" ]] || fail "exec's snapshot is not mounted at $exposed"
kill -KILL "$ctl"
wait "$ctl" 2>/dev/null || true
pkill -f '^sleep 600$' || true
for _ in $(seq "$(scaled 100)"); do
	[[ -z $(snapsetctl --json list --sets) ]] && break
	sleep 0.2
done
nothing_left "exec, snapsetctl SIGKILLed"
step "ok: exec: the set is gone after COMMAND was killed (exit 143) and after snapsetctl itself was SIGKILLed"

# --- expose: across a restart, in use, unexpose -------------------------------------------------

sum_b_now=$(sha "$mnt_b/data")   # the exec above changed it
snapset_create s "$mnt_b" "$mnt_c"
snap=$(jq -r '.snapshots[0].id' <<<"$s_json")
# 'snapsetctl list' shows the classic snapshot's COW use (it said "-" once).
cow=$(snapsetctl --json list | jq -r --arg id "$snap" '.snapshots[] | select(.id == $id) | .cowUsedPercent')
[[ $cow =~ ^[0-9.]+$ ]] || fail "ListSnapshotSets gives no cowUsedPercent for the dm-snapshot snapshot: '$cow'"
[[ $(snapsetctl list | grep -F "${snap:0:8}") =~ [0-9]\.[0-9]%  ]] || fail "snapsetctl list shows no COW use for $snap: $(snapsetctl list)"
snapset_capture x snapsetctl expose "$snap"
((x_rc == 0)) || fail "snapsetctl expose exited with $x_rc: $x_err"
path=$x_out
assert_eq "$(sha "$path/data")" "$sum_b_now" "the exposed xfs snapshot's data"
snapset_restart
[[ $(findmnt -n -o TARGET --mountpoint "$path") == "$path" ]] || fail "the exposed snapshot is not mounted after a restart of snapsetd"
assert_eq "$(snapsetctl --json show "$snap" | jq -r .exposedAt)" "$path" "exposedAt after the restart"

(cd "$path" && exec sleep 600) &
holder=$!
sleep 0.5
snapset_capture x snapsetctl delete "$s_id"
assert_eq "$x_rc" 37 "delete of a set whose snapshot is exposed and in use (VSS_E_VOLUME_IN_USE)"
assert_contains "$x_err" "pid $holder (sleep)" "the refusal names the process"
kill "$holder"
wait "$holder" 2>/dev/null || true

assert_success snapsetctl unexpose "$snap"
[[ -z $(findmnt -n --mountpoint "$path") && ! -e $path ]] || fail "unexpose left the mount or its directory: $path"
assert_success snapsetctl delete "$s_id"
nothing_left "expose"
step "ok: expose: mounted again after a restart, a delete while in use refused naming pid $holder, unexpose cleans mount and directory"
