#!/bin/bash
# Scheduled sets and space, on a real LVM thin pool: a definition of one thin LV (ext4), whose
# older snapshots hold blocks the origin has since overwritten, until the pool is past snapsetd's
# ThinPoolMaxUsedPercent=:
#   - PruneOnLowSpace=no: VSS_E_INSUFFICIENT_STORAGE naming the pool and how full it is, with the
#     way out (PruneOnLowSpace=); nothing is left, no hook ran; check says WARNING (the pool
#     past WarnUsedPercent=);
#   - PruneOnLowSpace=yes: the oldest set is deleted, its blocks freed, the set is taken and
#     holds the origin's bytes; the newest older set stays; a space-low event is in the journal
#     (the pool is still past WarnUsedPercent=) with its MESSAGE_ID.
# x_out, x_err and x_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvcreate mkfs.ext4 jq
modprobe dm-thin-pool

# A pool of 100M: snapshots are refused from 50% of it in use.
snapset_conf "[Storage]
ThinPoolMaxUsedPercent=50"
vg=snap73
lvm_vg $vg "$(scratch_disk 0)"
lvcreate -qq -y --type thin-pool -L 100M -n pool $vg
lvcreate -qq -y -V 128M --thin -n t0 $vg/pool
mkfs.ext4 -q /dev/$vg/t0
mnt=$(mount_tmp /dev/$vg/t0)
pool_used() { lvs --noheadings -o data_percent $vg/pool | tr -d ' '; }
# 16 MiB that the origin overwrites in place after each set: the set before keeps the old blocks.
overwrite() {
	dd if=/dev/urandom of="$mnt/data" bs=1M count=16 conv=notrunc oflag=direct status=none
	sync
}
overwrite

hooklog=/run/t73-hooks.log
snapset_log_hook 10-t73-log "$hooklog"
define() {
	printf '[Volume]\nPath=/dev/%s/t0\n\n[Retention]\nKeepLast=10\nPruneOnLowSpace=%s\n\n[Health]\nWarnUsedPercent=30\n' \
		"$vg" "$1" | snapset_definition t73
}
define no

ids=()
for i in 1 2; do
	snapset_capture x snapsetctl --json create --definition=t73
	((x_rc == 0)) || fail "set $i of t73: exit status $x_rc: $x_err"
	ids+=("$(jq -r .id <<<"$x_out")")
	overwrite
done
used=$(pool_used)
step "two sets of t73 (${ids[*]}), the origin overwritten after each: pool $used% in use"
awk -v u="$used" 'BEGIN { exit !(u >= 50) }' || fail "the pool is only $used% in use: the test cannot refuse a set"

# --- PruneOnLowSpace=no ---------------------------------------------------------------------------

: >"$hooklog"
snapset_capture x snapsetctl --json create --definition=t73
((x_rc != 0)) || fail "a set of t73 was taken with the pool $used% full: $x_out"
msg=$(jq -r .message <<<"$x_out")
assert_eq "$(jq -r .vssName <<<"$x_out")" VSS_E_INSUFFICIENT_STORAGE "the set that does not fit"
assert_contains "$msg" "$vg/pool" "the message"
assert_contains "$msg" "% of its data space in use" "the message"
assert_contains "$msg" "set PruneOnLowSpace=yes in /etc/snapset/sets.d/t73.conf" "the message"
assert_eq "$(snapsetctl --json list --sets | jq -r 'select(.definition == "t73") | .id' | sort)" \
	"$(printf '%s\n' "${ids[@]}" | sort)" "the sets of t73 after the refusal"
assert_eq "$(lvm_snapset_lvs $vg | wc -l)" 2 "snapset LVs after the refusal"
assert_eq "$(cut -d' ' -f1 "$hooklog")" "" "hooks run for a set that does not fit"
snapset_capture c snapsetctl check t73
assert_eq "$c_rc" 1 "snapsetctl check t73 with the pool at $used% (stdout: $c_out; the newer set: $(snapsetctl --json show "${ids[1]}"))"
assert_contains "$c_out" "thin pool $vg/pool is" "snapsetctl check t73"

# --- PruneOnLowSpace=yes --------------------------------------------------------------------------

define yes
since=$(now_usec)
snapset_capture x snapsetctl --json create --definition=t73
((x_rc == 0)) || fail "PruneOnLowSpace=yes: the set was not taken (exit status $x_rc): $x_err $x_out"
new=$(jq -r .id <<<"$x_out")
assert_eq "$(snapsetctl --json list --sets | jq -r 'select(.definition == "t73") | .id' | sort)" \
	"$(printf '%s\n' "${ids[1]}" "$new" | sort)" "the sets of t73: the oldest pruned for room, the newer one kept"
assert_eq "$(cut -d' ' -f1 "$hooklog")" "$(printf 'prepare\nthaw')" "the hooks of the set taken after the prune"
step "ok: set ${ids[0]} pruned for room, set $new taken; pool now $(pool_used)% in use"

dev=$(jq -r '.snapshots[0].device' <<<"$x_out")
smnt=$(mktemp -d "$SNAPSET_VM_TMP/snap.XXXXXX")
mount -o ro,noload "$dev" "$smnt"
defer "umount $smnt"
assert_eq "$(sha "$smnt/data")" "$(sha "$mnt/data")" "the data in the set taken after the prune"

events=$(snapset_journal "$since")
assert_contains "$(jq -r 'select(.SNAPSET_EVENT_TYPE == "sets-pruned") | .MESSAGE' <<<"$events")" \
	"set ${ids[0]} deleted to make room for a new set (PruneOnLowSpace=yes)" "the journal"
low=$(jq -c 'select(.SNAPSET_EVENT_TYPE == "space-low")' <<<"$events" | head -n 1)
assert_eq "$(jq -r .MESSAGE_ID <<<"$low")" 789025d42e9a411181fad75aa6bd9822 "the space-low event's MESSAGE_ID"
assert_contains "$(jq -r .MESSAGE <<<"$low")" "thin pool $vg/pool is" "the space-low event"
