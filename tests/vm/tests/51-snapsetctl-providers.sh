#!/bin/bash
# With Debian's kernel and modules, snapsetctl reports the device-mapper
# providers as usable (the development hosts, without dm, cannot show this).
# Contract: {"providers":[{"name":"dm-snapshot","usable":true,...},
#                         {"name":"dm-thin",...},{"name":"lvm",...}]}
# shellcheck source-path=SCRIPTDIR/.. source=lib.sh
. "$(dirname "$0")/../lib.sh"

require_cmd jq
command -v snapsetctl >/dev/null ||
	fail "snapsetctl is not installed in the VM: 'make install' did not provide it"

out=$(snapsetctl providers --json 2>&1) || fail "snapsetctl providers --json exited with $?: $out"
printf '%s\n' "$out"
jq -e . >/dev/null <<<"$out" || fail "snapsetctl providers --json did not print valid JSON"

usable() {
	jq -r --arg n "$1" '[.providers[] | select(.name == $n)] |
		if length == 0 then "missing" else (.[0].usable | tostring) end' <<<"$out"
}

assert_eq "$(usable dm-snapshot)" true "dm-snapshot usable"
assert_eq "$(usable dm-thin)" true "dm-thin usable"
lvm=$(usable lvm)
assert_ne "$lvm" missing "lvm provider listed"
step "lvm provider usable: $lvm"
