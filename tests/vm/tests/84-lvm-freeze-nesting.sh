#!/bin/bash
# vm-kernels: all
# How thin LVs join a set depends on whether the kernel lets LVM's freeze (a lockfs suspend)
# nest inside FIFREEZE, which snapsetd asks the kernel rather than its version:
#   - the probe's answer (/run/snapset/kernel-freeze-nesting) is what the kernel does: no before
#     Linux 6.8, yes from 6.8 on; "snapsetctl providers" says what it means for thin LVs;
#   - a thin LV alone in a set gets a native thin snapshot with the right note;
#   - after a set that holds a thin LV with other volumes, an administrator's own "lvcreate -s"
#     of that LV still freezes its filesystem. On 6.8+ this needs snapsetd's early thaw (the
#     FIFREEZE dropped while lvm still holds the LV suspended); without it the kernel leaves the
#     LV's freeze count stuck and LVM's freeze of that filesystem silently stops working
#     (lvm-thin-facts.md; snapsetd(8), "LVM volumes"). The control: the same check on an LV
#     before any set.
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvm dmsetup mkfs.ext4 jq python3

expect=no
kernel_at_least 6.8 && expect=yes

cowdir=$(snapset_cow_dir 64M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=8M"

vg=snap84
lvm_vg $vg "$(scratch_disk 0)"
lvcreate -qq -y --type thin-pool -L 128M -n pool $vg
lvcreate -qq -y -L 24M -n c $vg
for lv in t u; do lvcreate -qq -y -V 32M --thin -n $lv $vg/pool; done
declare -A mnt
for lv in c t u; do
	mkfs.ext4 -q /dev/$vg/$lv
	mnt[$lv]=$(mount_tmp /dev/$vg/$lv)
	echo "$lv" >"${mnt[$lv]}/f"
done
sync

# --- the probe ---------------------------------------------------------------------

providers=$(snapsetctl providers)
answer=$(cut -d' ' -f1 /run/snapset/kernel-freeze-nesting)
assert_eq "$answer" "$expect" "the kernel freeze-nesting probe on $(uname -r)"
assert_contains "$(cut -d' ' -f2 /run/snapset/kernel-freeze-nesting)" "$(uname -r)" "the probe's cache key"
if [[ $expect == yes ]]; then
	assert_contains "$providers" "native thin snapshots, at one instant with the other volumes" "snapsetctl providers"
else
	assert_contains "$providers" "a classic (copy-on-write) snapshot in a set with other volumes" "snapsetctl providers"
fi
[[ -z $(dmsetup ls | grep freeze-probe || true) && ! -e /run/snapset/freeze-probe.img ]] ||
	fail "the probe left its scratch device or image behind"

# --- the control: LVM's freeze works on a thin LV no set touched ----------------------

assert_eq "$(lockfs_freezes $vg u "${mnt[u]}")" yes "an administrator's lvcreate -s freezes the filesystem (before any set)"

# --- a thin LV alone ------------------------------------------------------------------

one=$(snapsetctl --json create /dev/$vg/t)
assert_eq "$(jq -r '.snapshots[0].kind' <<<"$one")" thin "a thin LV alone: its snapshot's kind"
if [[ $expect == no ]]; then
	assert_contains "$(jq -r '.snapshots[0].note' <<<"$one")" "frozen by LVM's own suspend" "its note"
fi
snapsetctl delete "$(jq -r .id <<<"$one")" >/dev/null
lvm_pool_tids_agree $vg pool

# --- a thin LV in a set with another volume, then the administrator's lvcreate -s ----------

two=$(snapsetctl --json create /dev/$vg/t /dev/$vg/c)
kind=$(jq -r '.snapshots[] | select(.volume == "/dev/'$vg'/t") | .kind' <<<"$two")
if [[ $expect == yes ]]; then
	assert_eq "$kind" thin "the thin LV's snapshot in a set of two, on a kernel whose freezes nest"
else
	assert_eq "$kind" classic "the thin LV's snapshot in a set of two, on a kernel whose freezes do not nest"
fi
snapsetctl delete "$(jq -r .id <<<"$two")" >/dev/null
lvm_assert_clean "after the set of two" $vg
fs_not_frozen "${mnt[t]}" "${mnt[c]}"
assert_eq "$(lockfs_freezes $vg t "${mnt[t]}")" yes "an administrator's lvcreate -s of the thin LV after the set freezes its filesystem"
assert_eq "$(cat "${mnt[t]}/f")" t "the thin LV's data"
lvm_pool_tids_agree $vg pool
