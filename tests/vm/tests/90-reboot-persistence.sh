#!/bin/bash
# The reboot protocol works and disks persist across it: boot 1 writes a random
# token to a raw scratch disk and into a file on an ext4 filesystem on another
# partition of it, then reboots; boot 2 must be a new boot (different boot id)
# and find both. Uses /dev/vdd and wipes it at the end.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

disk=$(scratch_disk 3)

case $SNAPSET_VM_BOOT in
1)
	token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
	vm_state_set token "$token"
	vm_state_set boot_id "$(cat /proc/sys/kernel/random/boot_id)"
	step "boot 1: writing token $token to $disk"
	# Raw: the token at 512 MiB into the disk, past where mkfs writes.
	printf '%s' "$token" | dd of="$disk" bs=1M seek=512 conv=fsync status=none
	# Filesystem: the first 256 MiB.
	mkfs.ext4 -q -F "$disk" 256M
	mnt=$(mount_tmp "$disk")
	echo "$token" >"$mnt/token"
	sync
	vm_reboot
	;;
2)
	token=$(vm_state_get token)
	assert_ne "$(cat /proc/sys/kernel/random/boot_id)" "$(vm_state_get boot_id)" "boot id (a real reboot happened)"
	defer "scratch_wipe $disk"
	raw=$(dd if="$disk" iflag=skip_bytes skip=$((512 << 20)) bs=${#token} count=1 status=none)
	assert_eq "$raw" "$token" "raw token on $disk after the reboot"
	mnt=$(mount_tmp "$disk" ro)
	assert_eq "$(cat "$mnt/token")" "$token" "token file on ext4 after the reboot"
	;;
*)
	fail "unexpected SNAPSET_VM_BOOT=$SNAPSET_VM_BOOT (this test reboots once)"
	;;
esac
