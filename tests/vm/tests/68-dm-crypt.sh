#!/bin/bash
# Encrypted volumes done right: snapset never writes key material anywhere, and a dm-crypt
# volume is snapshotted through the device under it, which stays encrypted.
#   refused  a plain dm-crypt device and a LUKS2 one, each with a mounted ext4: "snapsetctl
#            create" of either is refused before any storage is allocated (the COW directory
#            stays empty), saying to snapshot the device under it; "snapsetctl volumes" says
#            the same.
#   under    a set of the device under the plain dm-crypt one, with a writer on the filesystem
#            on top: created; the snapshot opened with the same key shows the file written
#            before the set, byte for byte (so it is ciphertext, and the filesystem on top was
#            frozen with the set: mounted without journal replay).
#   keys     the volume key (hex, from dmsetup table --showkeys) appears in no file under
#            /var/lib/snapset or /run/snapset, and nowhere in snapsetd's journal.
# c_out, c_err and c_rc are set by snapset_capture:
# shellcheck disable=SC2154
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl dmsetup cryptsetup mkfs.ext4 jq losetup
modprobe dm-snapshot
modprobe dm-crypt
modprobe loop

cowdir=$(snapset_cow_dir 128M)
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=16M"
t0=$(now_usec)

keyfile=$SNAPSET_VM_TMP/key
head -c 64 /dev/urandom >"$keyfile"

# plain dm-crypt on t68-low, LUKS2 on t68-low2; an ext4 on each.
loop1=$(loop_create 64M) loop2=$(loop_create 64M)
low=$(dm_create t68-low "0 $(sectors "$loop1") linear $loop1 0")
cryptsetup open --type plain --cipher aes-xts-plain64 --key-size 512 --key-file "$keyfile" "$low" t68-plain
defer "cryptsetup close t68-plain"
low2=$(dm_create t68-low2 "0 $(sectors "$loop2") linear $loop2 0")
snapset_remember_tables t68-low t68-low2
cryptsetup luksFormat -q --type luks2 --pbkdf pbkdf2 --pbkdf-force-iterations 1000 --key-file "$keyfile" "$low2"
cryptsetup open --key-file "$keyfile" "$low2" t68-luks2
defer "cryptsetup close t68-luks2"
# The key, in hex as a crypt table would carry it: plain mode takes the key file's bytes as they
# are (checked: the table with --showkeys, when the kernel shows it, must say the same).
key=$(od -An -tx1 -v "$keyfile" | tr -d ' \n')
shown=$(dmsetup table --showkeys t68-plain | awk '{ print $5 }')
[[ $shown == "$key" || $shown =~ ^0+$ || $shown == :* ]] ||
	fail "the plain dm-crypt table's key is neither the key file's bytes nor hidden: $shown"
for n in t68-plain t68-luks2; do
	mkfs.ext4 -q -F "/dev/mapper/$n"
done
plain_mnt=$(mount_tmp /dev/mapper/t68-plain)
luks_mnt=$(mount_tmp /dev/mapper/t68-luks2)
random_file "$plain_mnt/data" 2
sum=$(sha "$plain_mnt/data")
sync

# --- the dm-crypt devices themselves are refused, before anything is allocated -----------
for n in t68-plain t68-luks2; do
	snapset_capture c snapsetctl create "/dev/mapper/$n"
	((c_rc != 0)) || fail "a set of /dev/mapper/$n was created"
	assert_contains "$c_err" "a dm-crypt device: snapshot the device under it" "$n is refused with the advice"
	[[ -z $(ls -A "$cowdir") ]] || fail "$n: storage was allocated before the refusal: $(ls "$cowdir")"
	step "ok: /dev/mapper/$n refused: $c_err"
done
snapset_capture v snapsetctl --json volumes
assert_contains "$(jq -r '.volumes[] | select(.path == "/dev/mapper/t68-plain") | .reason' <<<"$v_out")" \
	"snapshot the device under it" "snapsetctl volumes gives the advice"

# --- the device under it, with a writer on the filesystem on top -------------------------
blocks=$SNAPSET_VM_TMP/blocks
writer=$(seq_writer_start "$blocks" "$plain_mnt/sequence")
sleep 1
snapset_create s "$low"
id=$s_id
seq_writer_stop "$writer"
snap=$(jq -r '.snapshots[0].device' <<<"$s_json")
cryptsetup open --type plain --cipher aes-xts-plain64 --key-size 512 --key-file "$keyfile" --readonly "$snap" t68-snap-plain
defer "cryptsetup close t68-snap-plain 2>/dev/null || true"
m=$(mktemp -d "$SNAPSET_VM_TMP/snap.XXXXXX")
mount -o ro,noload /dev/mapper/t68-snap-plain "$m"
defer "umount $m 2>/dev/null || true"
assert_eq "$(sha "$m/data")" "$sum" "the file written before the set, read through the key from the snapshot"
n=$(seq_check_cut "$m/sequence") || fail "the writer's file in the snapshot is not a prefix: $n"
step "ok: the snapshot of $low is ciphertext that opens with the volume's key; the filesystem on top was frozen (its file ends at $n)"
umount "$m"
cryptsetup close t68-snap-plain

# --- no key material anywhere ---------------------------------------------------------
hits=$(grep -rlis -- "$key" /var/lib/snapset /run/snapset || true)
[[ -z $hits ]] || fail "the volume key is in: $hits"
journalctl --sync
if journalctl --no-pager -o export --since "@$((t0 / 1000000))" | grep -qi -- "$key"; then
	fail "the volume key is in the journal"
fi
step "ok: the volume key is in no file under /var/lib/snapset or /run/snapset, and not in the journal"

snapset_capture d snapsetctl delete "$id"
((d_rc == 0)) || fail "snapsetctl delete failed: $d_err"
snapset_assert_clean "at the end" "$cowdir" t68-low t68-low2
