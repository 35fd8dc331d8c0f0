#!/bin/bash
# The benchmark's VM half (bench/README.md): for each provider (dm-snapshot, dm-thin, lvm-classic,
# lvm-thin) and each set size N, sets of N volumes (ext4 and xfs in turn) taken while a writer
# appends to every volume with fsync, and in the same runs the floor (build/bench-floor: FIFREEZE
# all, suspend all with skip-lockfs, resume all, FITHAW all, on the same volumes under the same
# writer). Each run gives one JSON line in <kernel>.bench.json in the results share:
#   freeze window and hold (snapsetd's reply), CreateSnapshotSet end to end and the delete of the
#   set (as snapsetctl sees them), the writer's worst write during each, and the floor's window.
# By default (make check) the smoke run: N = 1 and 2, one run each, so that the bench never rots;
# it checks that every number is there and that each set is a consistent cut. SNAPSET_BENCH=full
# (make bench): N = 1, 4, 16 and 64, five runs each; SNAPSET_BENCH=1,4,16:3 chooses sizes and
# runs. Nothing here is a pass/fail limit on time.
. "$(dirname "$0")/../lib.sh"

require_cmd snapsetctl lvm dmsetup mkfs.ext4 mkfs.xfs jq
modprobe dm-snapshot
modprobe dm-thin-pool

src=$(vm_src_dir)
floor=$(vm_build_dir)/bench-floor
[[ -x $floor ]] || fail "no bench-floor at $floor: run make"

case ${SNAPSET_BENCH:-} in
full) sizes=(1 4 16 64) runs=5 ;;
*:*) # e.g. 1,4,16:3
	IFS=, read -r -a sizes <<<"${SNAPSET_BENCH%%:*}"
	runs=${SNAPSET_BENCH##*:}
	;;
*) sizes=(1 2) runs=1 ;;
esac
max=${sizes[-1]}
out=/run/snapset-vm/results/$(uname -r | cut -d- -f1).bench.json
[[ -d /run/snapset-vm/results ]] || out=$SNAPSET_VM_TMP/bench.json
: >"$out"

cowdir=$(snapset_cow_dir $((max * 12 + 64))M)
# A set of 64 LVs holds writes for most of a minute under TCG (lvm's own time per LV, 32 LVs in
# each VG): a hold limit with room above that, and a flush limit, whose sum stays under half of
# the VM's watchdog (180 s, scaled), as snapsetd requires.
snapset_conf "[Storage]
CowDirectory=$cowdir
DefaultCowSize=8M
[Limits]
MaxVolumesPerSet=64
FlushTimeoutSec=$(scaled 10 | awk '{ print ($1 > 40) ? 40 : $1 }')
HoldTimeoutSec=$(scaled 78 | awk '{ print ($1 > 120) ? 120 : $1 }')"

# --- volumes: $max of each kind, ext4 (32 MiB) and xfs (320 MiB, its minimum is 300) in turn ----

declare -A mnt
declare -a vols_dmsnap vols_dmthin vols_classic vols_thin
fs_of() { (($1 % 2 == 0)) && echo ext4 || echo xfs; }
size_mib() { [[ $(fs_of "$1") == ext4 ]] && echo 32 || echo 320; }

mkfs_all() {
	local dev i=0
	for dev in "$@"; do
		if [[ $(fs_of $i) == ext4 ]]; then mkfs.ext4 -q -F "$dev"; else mkfs.xfs -q -f "$dev"; fi &
		i=$((i + 1))
	done
	wait
	for dev in "$@"; do
		mnt[$dev]=$(mount_tmp "$dev")
	done
}

# dm-snapshot: dm-linear slices of disk 0 (wiped at the end, after its devices are gone).
disk=$(scratch_disk 0)
defer "scratch_wipe $disk"
offset=0
for ((i = 0; i < max; i++)); do
	len=$(($(size_mib $i) * 2048))
	vols_dmsnap+=("$(dm_create "b95-lin$i" "0 $len linear $disk $offset")")
	offset=$((offset + len))
done

# dm-thin: a pool LVM does not manage, on disk 1.
disk=$(scratch_disk 1)
defer "scratch_wipe $disk"
dm_create b95-meta "0 32768 linear $disk 0" >/dev/null
dm_create b95-data "0 $(($(sectors "$disk") - 32768)) linear $disk 32768" >/dev/null
dd if=/dev/zero of=/dev/mapper/b95-meta bs=4K count=1 oflag=direct status=none
pool=$(dm_create b95-pool "0 $(($(sectors "$disk") - 32768)) thin-pool /dev/mapper/b95-meta /dev/mapper/b95-data 128 0")
for ((i = 0; i < max; i++)); do
	dmsetup message b95-pool 0 "create_thin $i"
	defer "dmsetup message b95-pool 0 'delete $i' 2>/dev/null || true"
	vols_dmthin+=("$(dm_create "b95-thin$i" "0 $(($(size_mib $i) * 2048)) thin $pool $i")")
done

# lvm: two VGs (they run in parallel), each with classic LVs and a thin pool with thin LVs.
lvm_vg b95a "$(scratch_disk 2)"
lvm_vg b95b "$(scratch_disk 3)"
make_lvs() {
	local vg=$1 first=$2 i
	# xfs on thin LVs uses its share of the pool: room for it at every size (the smoke run's
	# two volumes need little).
	lvcreate -qq -y --type thin-pool -L "$((max <= 2 ? max * 12 + 64 : max * 40 + 128))M" -n pool "$vg"
	for ((i = first; i < max; i += 2)); do
		lvcreate -qq -y -L "$(size_mib $i)M" -n "c$i" "$vg"
		lvcreate -qq -y -V "$(size_mib $i)M" --thin -n "t$i" "$vg/pool"
	done
}
make_lvs b95a 0 &
make_lvs b95b 1
wait
udevadm settle
for ((i = 0; i < max; i++)); do
	vg=b95a
	((i % 2)) && vg=b95b
	vols_classic+=("/dev/$vg/c$i")
	vols_thin+=("/dev/$vg/t$i")
done
mkfs_all "${vols_dmsnap[@]}" "${vols_dmthin[@]}" "${vols_classic[@]}" "${vols_thin[@]}"
step "volumes: $max of each kind (dm-snapshot, dm-thin, lvm-classic, lvm-thin), ext4 and xfs in turn"

# --- one run ---------------------------------------------------------------------

# cpu_usec UNIT: the CPU time a service's cgroup has used so far, its children included (udev's
# rules start dmsetup for the uevents of dm devices: that is where much of a create or delete
# goes under TCG).
cpu_usec() {
	awk '$1 == "usage_usec" { print $2; found = 1 } END { if (!found) print 0 }' \
		"/sys/fs/cgroup/system.slice/$1/cpu.stat" 2>/dev/null || echo 0
}
# cpu_mark: both services' CPU so far, "udev snapsetd".
cpu_mark() {
	echo "$(cpu_usec systemd-udevd.service) $(cpu_usec snapsetd.service)"
}

blocks=$SNAPSET_VM_TMP/blocks
touch "$SNAPSET_VM_TMP/fsync"   # the writer fsyncs every write: what a database does

# run_once PROVIDER N RUN DEV...: one set under the writer, its delete, and the floor under the
# same writer; appends a JSON line to $out.
run_once() {
	local provider=$1 n=$2 run=$3 writer t0 t1 t2 t3 f0 f1 json id paths=() dev cut files=() smnt opts sdev
	local c0 c1 d0 d1
	shift 3
	for dev in "$@"; do
		rm -f "${mnt[$dev]}/sequence"
		paths+=("${mnt[$dev]}/sequence")
	done
	writer=$(seq_writer_start "$blocks" "${paths[@]}")
	sleep 0.5
	read -r -a c0 < <(cpu_mark)
	t0=$(now_usec)
	snapset_capture c snapsetctl --timeout="$(scaled 300)" --json create "$@"
	t1=$(now_usec)
	read -r -a c1 < <(cpu_mark)
	sleep 0.3
	((c_rc == 0)) || fail "$provider, $n volume(s): snapsetctl create exited with $c_rc: $c_err"
	json=$c_out
	id=$(jq -r .id <<<"$json")
	defer "snapsetctl delete $id >/dev/null 2>&1 || true"
	# The origins keep their device nodes through the set (udev has seen the resumes).
	udevadm settle
	for dev in "$@"; do
		[[ -b $dev ]] || fail "$provider, $n volume(s): $dev is no longer a block device after the set"
	done
	f0=$(now_usec)
	floor_json=$("$floor" "$@") || fail "$provider, $n volume(s): bench-floor failed"
	f1=$(now_usec)
	pfloor_json=$("$floor" --parallel "$@") || fail "$provider, $n volume(s): bench-floor --parallel failed"
	sleep 0.3
	seq_writer_stop "$writer"

	# The snapshots are a consistent cut (what the numbers are worth).
	for dev in "$@"; do
		sdev=$(jq -r --arg v "$dev" '.snapshots[] | select(.volume == $v) | .device' <<<"$json")
		[[ $(blkid -o value -s TYPE "$sdev") == xfs ]] && opts=ro,nouuid,norecovery || opts=ro,noload
		smnt=$(mktemp -d "$SNAPSET_VM_TMP/snap.XXXXXX")
		mount -o "$opts" "$sdev" "$smnt"
		files+=("$smnt/sequence")
	done
	cut=$(seq_check_cut "${files[@]}") || fail "$provider, $n volume(s): $cut"
	for smnt in "${files[@]}"; do umount "$(dirname "$smnt")"; rmdir "$(dirname "$smnt")"; done

	read -r -a d0 < <(cpu_mark)
	t2=$(now_usec)
	snapset_capture d snapsetctl --timeout="$(scaled 300)" delete "$id"
	t3=$(now_usec)
	read -r -a d1 < <(cpu_mark)
	((d_rc == 0)) || fail "$provider, $n volume(s): snapsetctl delete exited with $d_rc: $d_err"

	jq -c -n --arg kernel "$(uname -r)" --arg provider "$provider" --argjson n "$n" --argjson run "$run" \
		--argjson set "$json" --argjson floor "$floor_json" --argjson pfloor "$pfloor_json" \
		--argjson create $((t1 - t0)) --argjson delete $((t3 - t2)) \
		--argjson worst "$(seq_max_block "$blocks" "$t0" "$t1")" \
		--argjson floorWorst "$(seq_max_block "$blocks" "$f0" "$f1")" \
		--argjson slowness "${SNAPSET_VM_SLOWNESS:-1}" \
		--argjson cpu "$(jq -n --argjson uc $((c1[0] - c0[0])) --argjson sc $((c1[1] - c0[1])) \
			--argjson ud $((d1[0] - d0[0])) --argjson sd $((d1[1] - d0[1])) \
			'{udev: {createUsec: $uc, deleteUsec: $ud}, snapsetd: {createUsec: $sc, deleteUsec: $sd}}')" \
		'{kernel: $kernel, slowness: $slowness, provider: $provider, n: $n, run: $run,
		  freezeWindowUsec: $set.freezeWindowUsec, holdUsec: $set.holdUsec, createUsec: $create,
		  deleteUsec: $delete, writerWorstUsec: $worst, floorWindowUsec: $floor.windowUsec,
		  floorWriterWorstUsec: $floorWorst, floorParallelWindowUsec: $pfloor.windowUsec,
		  floorSteps: ($floor | del(.n, .parallel)), floorParallelSteps: ($pfloor | del(.n, .parallel)), kinds: ([$set.snapshots[].kind] | unique),
		  providers: ([$set.snapshots[].provider] | unique), cpuUsec: $cpu}' >>"$out"
	printf '%-12s N=%-3d run %d: window %8d us, hold %8d us, create %6d ms (udev CPU %d ms), delete %6d ms (udev CPU %d ms), writer worst %8d us; floor %8d us, parallel %8d us\n' \
		"$provider" "$n" "$run" "$(jq -r .freezeWindowUsec <<<"$json")" "$(jq -r .holdUsec <<<"$json")" \
		$(((t1 - t0) / 1000)) $(((c1[0] - c0[0]) / 1000)) $(((t3 - t2) / 1000)) $(((d1[0] - d0[0]) / 1000)) \
		"$(seq_max_block "$blocks" "$t0" "$t1")" \
		"$(jq -r .windowUsec <<<"$floor_json")" "$(jq -r .windowUsec <<<"$pfloor_json")"
}

read -r -a providers <<<"${SNAPSET_BENCH_PROVIDERS:-dm-snapshot dm-thin lvm-classic lvm-thin}"
for provider in "${providers[@]}"; do
	case $provider in
	dm-snapshot) vols=("${vols_dmsnap[@]}") ;;
	dm-thin) vols=("${vols_dmthin[@]}") ;;
	lvm-classic) vols=("${vols_classic[@]}") ;;
	lvm-thin) vols=("${vols_thin[@]}") ;;
	esac
	for n in "${sizes[@]}"; do
		for ((run = 1; run <= runs; run++)); do
			run_once "$provider" "$n" "$run" "${vols[@]:0:n}"
		done
	done
done

# --- what users script today, and the write penalty of snapshots (bench/alternatives.sh) ----

if [[ ${SNAPSET_BENCH_ALTERNATIVES:-1} == 1 ]]; then
	require_cmd snapper fio fsfreeze
	alt_out=${out%.bench.json}.alt.bench.json
	: >"$alt_out"
	. "$src/bench/alternatives.sh"
	# At most 3 runs, at most 16 volumes: a loop of lvcreate over 64 LVs says nothing 16 do not.
	# The smoke run (make check): one volume, and fio after 0 and 1 snapshots, for a minute less.
	if [[ ${SNAPSET_BENCH:-} ]]; then
		alt_sizes=("${sizes[@]}") seconds=10 counts="0 1 4"
	else
		alt_sizes=(1) seconds=1 counts="0 1"
	fi
	for n in "${alt_sizes[@]}"; do
		((n <= 16)) || continue
		for ((run = 1; run <= (runs < 3 ? runs : 3); run++)); do
			alt_fsfreeze_lvcreate thin "$n" "$run" "${vols_thin[@]:0:n}"
			alt_fsfreeze_lvcreate classic "$n" "$run" "${vols_classic[@]:0:n}"
			alt_lvcreate_loop "$n" "$run" "${vols_thin[@]:0:n}"
			alt_snapper "$n" "$run" "${vols_thin[@]:0:n}"
			alt_dmsetup "$n" "$run" "${vols_dmsnap[@]:0:n}"
		done
	done
	lvcreate -qq -y -L 64M -n fioc b95a
	lvcreate -qq -y --type thin-pool -L 160M -n fiopool b95a
	lvcreate -qq -y -V 64M --thin -n fiot b95a/fiopool
	mkfs.ext4 -q /dev/b95a/fioc
	mkfs.ext4 -q /dev/b95a/fiot
	alt_fio classic /dev/b95a/fioc "$seconds" $counts
	alt_fio thin /dev/b95a/fiot "$seconds" $counts
	lvremove -qq -y b95a/fioc b95a/fiot b95a/fiopool
	read -r -a counts <<<"$counts"
	assert_eq "$(jq -s 'map(select(.alternative == "fio")) | length' "$alt_out")" $((2 * ${#counts[@]})) "fio runs recorded"
	step "ok: the comparisons, in $alt_out"
fi

# Every line has every number (the report relies on it), and nothing is left.
lines=$(wc -l <"$out")
assert_eq "$lines" $((${#providers[@]} * ${#sizes[@]} * runs)) "runs recorded in $out"
bad=$(jq -c 'select([.freezeWindowUsec, .holdUsec, .createUsec, .deleteUsec, .writerWorstUsec, .floorWindowUsec, .floorParallelWindowUsec,
	.cpuUsec.udev.createUsec, .cpuUsec.udev.deleteUsec, .cpuUsec.snapsetd.createUsec, .cpuUsec.snapsetd.deleteUsec] | map(type == "number") | all | not)' "$out")
# The services' CPU was found (a cgroup not where it is looked for reads as 0).
[[ $(jq -s 'map(.cpuUsec.snapsetd.createUsec) | max' "$out") -gt 0 ]] || fail "no CPU time of snapsetd.service recorded: is its cgroup under /sys/fs/cgroup/system.slice?"
[[ $(jq -s 'map(.cpuUsec.udev.createUsec) | max' "$out") -gt 0 ]] || fail "no CPU time of systemd-udevd.service recorded"
[[ -z $bad ]] || fail "runs with a number missing: $bad"
# Each kind of volume went to the provider it stands for.
for p in "${providers[@]}"; do
	want=${p%-classic}
	want=${want%-thin}
	[[ $p == dm-thin ]] && want=dm-thin
	got=$(jq -r --arg p "$p" 'select(.provider == $p) | .providers | join(",")' "$out" | sort -u | paste -sd' ')
	assert_eq "$got" "$want" "the provider snapsetd chose for the $p volumes"
done
lvm_assert_clean "after the bench" b95a b95b
step "ok: $lines runs, every number recorded in $out; every set a consistent cut; nothing left"

# And the report is made from them (bench/report.py, as make bench does on the host).
"$src/bench/report.py" --out "$SNAPSET_VM_TMP/report" --name vm "$out" ${alt_out:+"$alt_out"}
[[ -s $SNAPSET_VM_TMP/report/vm.md && -s $SNAPSET_VM_TMP/report/vm.png ]] || fail "bench/report.py wrote no report"
step "ok: the report: $(head -c 300 "$SNAPSET_VM_TMP/report/vm.md" | tail -n +3)"
