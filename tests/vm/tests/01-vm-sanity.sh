#!/bin/bash
# The VM is what the other tests assume: Debian's kernel, real systemd/udev,
# device-mapper available, the scratch disks attached and empty.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

step "kernel $(uname -r)"
assert_contains "$(uname -r)" "-amd64" "kernel release"
assert_eq "$(ps -o comm= -p 1)" systemd "PID 1"
assert_eq "$(systemctl is-active systemd-udevd.service)" active "systemd-udevd"
assert_eq "$(findmnt -no FSTYPE /)" overlay "root filesystem type"

modprobe dm-mod
udevadm settle
[[ -c /dev/mapper/control ]] || fail "/dev/mapper/control missing after modprobe dm-mod"
step "ok: /dev/mapper/control exists"
assert_success dmsetup version

disks=(/dev/vd?)
n=${#disks[@]}
((n >= 4)) || fail "expected at least 4 scratch disks, found $n: $(ls /dev/vd? 2>&1)"
step "ok: $n scratch disks"
for d in /dev/vd?; do
	assert_eq "$(blockdev --getsize64 "$d")" $((1024 * 1024 * 1024)) "size of $d"
	assert_eq "$(blkid -p -o value -s TYPE "$d" || true)" "" "signature on $d"
done

dev=$(loop_create 64M)
assert_eq "$(blockdev --getsize64 "$dev")" $((64 * 1024 * 1024)) "size of loop device $dev"
