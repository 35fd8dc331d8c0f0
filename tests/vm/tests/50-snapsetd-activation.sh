#!/bin/bash
# snapsetd under real systemd: the socket is enabled and listening, the first
# client request starts snapsetd.service through socket activation, and the
# daemon's startup line reaches the journal.
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

command -v snapsetctl >/dev/null ||
	fail "snapsetctl is not installed in the VM: 'make install' did not provide it (did the harness run with SNAPSET_VM_NO_INSTALL=1?)"
[[ -x /usr/sbin/snapsetd ]] || fail "/usr/sbin/snapsetd is not installed in the VM"

assert_eq "$(systemctl is-enabled snapsetd.socket || true)" enabled "snapsetd.socket enabled"
assert_eq "$(systemctl is-active snapsetd.socket || true)" active "snapsetd.socket"
# Tests share one boot: an earlier test may have activated the daemon. Stop it
# (the socket stays) so that this test sees a first request of its own.
systemctl stop snapsetd.service
assert_eq "$(systemctl is-active snapsetd.service || true)" inactive "snapsetd.service before the first request"

since=$(date '+%Y-%m-%d %H:%M:%S')
step "snapsetctl status (first request: activates the daemon)"
out=$(snapsetctl status 2>&1) || fail "snapsetctl status exited with $?: $out"
printf '%s\n' "$out"

state=
for _ in $(seq 20); do
	state=$(systemctl is-active snapsetd.service || true)
	[[ $state == active ]] && break
	sleep 0.5
done
assert_eq "$state" active "snapsetd.service after the first request"

# journald may take a moment to store the line.
line=
for _ in $(seq 20); do
	line=$(journalctl --no-pager -o cat -u snapsetd.service --since "$since" | grep -m1 '^snapsetd .*started' || true)
	[[ -n $line ]] && break
	sleep 0.5
done
[[ -n $line ]] || fail "no 'snapsetd ... started' line in the journal; journalctl -u snapsetd says:
$(journalctl --no-pager -o cat -u snapsetd.service | tail -n 20)"
step "ok: journal: $line"
