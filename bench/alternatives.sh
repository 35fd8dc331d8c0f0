# The benchmark's comparisons (bench/README.md), sourced by tests/vm/tests/95-bench.sh, which has
# made the volumes and mounted them (mnt[DEV]), and defines blocks, alt_out and the writer.
# What users script today, on the same volumes in the same boot, one JSON line per run in
# $alt_out:
#   alt_fsfreeze_lvcreate KIND N RUN LV...  fsfreeze -f all, lvcreate -s each, fsfreeze -u all
#   alt_lvcreate_loop N RUN LV...           lvcreate -s each, no freeze: the spread of instants
#   alt_snapper N RUN LV...                 snapper create on each (LVM thin configs)
#   alt_dmsetup N RUN DEV...                a dmsetup script for dm-snapshot, one process a step
# and the write penalty of snapshots on their origin:
#   alt_fio KIND LV SECONDS COUNT...        fio 4k random direct writes after COUNT snapshots
# Nothing here is a pass/fail limit on time; a failure of the scripted approach is a result
# (recorded, and what it left behind cleaned up), a failure to clean up is not.

alt_record() {
	jq -c -n --arg kernel "$(uname -r)" --argjson slowness "${SNAPSET_VM_SLOWNESS:-1}" "$@" \
		'$ARGS.named + {kernel: $kernel, slowness: $slowness}' >>"$alt_out"
}

# The writer of 95-bench on the volumes' mountpoints, started; its pid in alt_writer.
alt_writer_start() {
	local dev paths=()
	for dev in "$@"; do
		paths+=("${mnt[$dev]}/sequence")
	done
	alt_writer=$(seq_writer_start "$blocks" "${paths[@]}")
	sleep 0.5
}

alt_writer_stop() {
	sleep 0.3
	seq_writer_stop "$alt_writer"
}

lvs_now() {
	lvs --noheadings -o vg_name,lv_name b95a b95b 2>/dev/null | awk '{ print $1 "/" $2 }' | sort
}

dm_now() {
	dmsetup ls 2>/dev/null | awk '{ print $1 }' | sort
}

# Removes the LVs and dm devices that appeared since the lists in $1 and $2 (files), and fails
# if it cannot: the next runs need clean volume groups.
alt_cleanup() {
	local lv dev
	for lv in $(comm -13 "$1" <(lvs_now)); do
		lvremove -qq -y "$lv" >/dev/null 2>&1 || lvremove -qq -y -ff "$lv" >/dev/null 2>&1 || true
	done
	for dev in $(comm -13 "$2" <(dm_now)); do
		dmsetup remove --retry "$dev" >/dev/null 2>&1 || true
	done
	udevadm settle
	[[ -z $(comm -13 "$1" <(lvs_now)) && -z $(comm -13 "$2" <(dm_now)) ]] ||
		fail "the comparison left what it could not remove: $(comm -13 "$1" <(lvs_now)) $(comm -13 "$2" <(dm_now))"
}

# fsfreeze -f all; lvcreate -s each (classic: -L 8M); fsfreeze -u all. On Linux before 6.8 lvm's
# lockfs suspend of a frozen filesystem fails with EBUSY: recorded with what it left behind.
alt_fsfreeze_lvcreate() {
	local kind=$1 n=$2 run=$3 dev i=0 ok=0 failed=0 err='' t0 t1 left size=()
	shift 3
	[[ $kind == classic ]] && size=(-L 8M)
	lvs_now >"$SNAPSET_VM_TMP/lvs.before"
	dm_now >"$SNAPSET_VM_TMP/dm.before"
	alt_writer_start "$@"
	t0=$(now_usec)
	for dev in "$@"; do
		fsfreeze -f "${mnt[$dev]}"
	done
	for dev in "$@"; do
		if timeout "$(scaled 120)" lvcreate -qq -y -s "${size[@]}" -n "alt$i" "$dev" >/dev/null 2>"$SNAPSET_VM_TMP/lvcreate.err"; then
			ok=$((ok + 1))
		else
			failed=$((failed + 1))
			[[ -n $err ]] || err=$(grep -v WARNING "$SNAPSET_VM_TMP/lvcreate.err" | head -n 2 | tr '\n' ' ')
		fi
		i=$((i + 1))
	done
	for dev in "$@"; do
		fsfreeze -u "${mnt[$dev]}"
	done
	t1=$(now_usec)
	alt_writer_stop
	# What a failed lvcreate left: LVs (and their dm devices) it was not asked to keep.
	left=$( (comm -13 "$SNAPSET_VM_TMP/lvs.before" <(lvs_now); comm -13 "$SNAPSET_VM_TMP/dm.before" <(dm_now)) |
		paste -sd' ')
	((failed == 0)) && left=''
	alt_record --arg alternative fsfreeze+lvcreate --arg kind "lvm-$kind" --argjson n "$n" --argjson run "$run" \
		--argjson windowUsec $((t1 - t0)) --argjson writerWorstUsec "$(seq_max_block "$blocks" "$t0" "$t1")" \
		--argjson created "$ok" --argjson failed "$failed" --arg error "$err" --arg leftBehind "$left"
	alt_cleanup "$SNAPSET_VM_TMP/lvs.before" "$SNAPSET_VM_TMP/dm.before"
	printf '%-18s %-12s N=%-3d run %d: window %8d us, %d created, %d failed%s\n' fsfreeze+lvcreate "lvm-$kind" \
		"$n" "$run" $((t1 - t0)) "$ok" "$failed" "${left:+, left behind: $left}"
}

# lvcreate -s on each thin LV in turn, without a freeze: each snapshot is its own instant, somewhere
# inside its lvcreate. The spread is bounded below by (last start - first end) and above by (last
# end - first start).
alt_lvcreate_loop() {
	local n=$1 run=$2 dev i=0 t0 t1 first_end=0 last_start=0
	shift 2
	lvs_now >"$SNAPSET_VM_TMP/lvs.before"
	dm_now >"$SNAPSET_VM_TMP/dm.before"
	alt_writer_start "$@"
	t0=$(now_usec)
	for dev in "$@"; do
		last_start=$(now_usec)
		lvcreate -qq -y -s -n "alt$i" "$dev" >/dev/null 2>&1 || fail "lvcreate -s $dev failed"
		((first_end)) || first_end=$(now_usec)
		i=$((i + 1))
	done
	t1=$(now_usec)
	alt_writer_stop
	alt_cleanup "$SNAPSET_VM_TMP/lvs.before" "$SNAPSET_VM_TMP/dm.before"
	alt_record --arg alternative lvcreate-loop --arg kind lvm-thin --argjson n "$n" --argjson run "$run" \
		--argjson totalUsec $((t1 - t0)) --argjson spreadUsec $((t1 - t0)) \
		--argjson spreadMinUsec $((n > 1 ? last_start - first_end : 0)) \
		--argjson writerWorstUsec "$(seq_max_block "$blocks" "$t0" "$t1")"
	printf '%-18s %-12s N=%-3d run %d: total %6d ms, instants spread over %d..%d ms\n' lvcreate-loop lvm-thin "$n" \
		"$run" $(((t1 - t0) / 1000)) $((n > 1 ? (last_start - first_end) / 1000 : 0)) $(((t1 - t0) / 1000))
}

# snapper (--no-dbus: no snapperd), one LVM config per thin LV, made once.
declare -A alt_snapper_config
alt_snapper_configs() {
	local dev cfg fstype
	for dev in "$@"; do
		[[ -n ${alt_snapper_config[$dev]:-} ]] && continue
		cfg=b95-$(basename "$dev")
		fstype=$(findmnt -n -o FSTYPE "${mnt[$dev]}")
		snapper --no-dbus -c "$cfg" create-config -f "lvm($fstype)" "${mnt[$dev]}" ||
			fail "snapper create-config for $dev failed"
		defer "snapper --no-dbus -c $cfg delete-config >/dev/null 2>&1 || true"
		alt_snapper_config[$dev]=$cfg
	done
}

alt_snapper() {
	local n=$1 run=$2 dev t0 t1 first_end=0 last_start=0 num nums=() i=0
	shift 2
	alt_snapper_configs "$@"
	alt_writer_start "$@"
	t0=$(now_usec)
	for dev in "$@"; do
		last_start=$(now_usec)
		num=$(snapper --no-dbus -c "${alt_snapper_config[$dev]}" create -p -d bench) ||
			fail "snapper create on $dev failed"
		nums+=("$num")
		((first_end)) || first_end=$(now_usec)
	done
	t1=$(now_usec)
	alt_writer_stop
	for dev in "$@"; do
		snapper --no-dbus -c "${alt_snapper_config[$dev]}" delete "${nums[i]}" || fail "snapper delete on $dev failed"
		i=$((i + 1))
	done
	alt_record --arg alternative snapper --arg kind lvm-thin --argjson n "$n" --argjson run "$run" \
		--argjson totalUsec $((t1 - t0)) --argjson spreadUsec $((t1 - t0)) \
		--argjson spreadMinUsec $((n > 1 ? last_start - first_end : 0)) \
		--argjson writerWorstUsec "$(seq_max_block "$blocks" "$t0" "$t1")"
	printf '%-18s %-12s N=%-3d run %d: total %6d ms, instants spread over %d..%d ms\n' snapper lvm-thin "$n" "$run" \
		$(((t1 - t0) / 1000)) $((n > 1 ? (last_start - first_end) / 1000 : 0)) $(((t1 - t0) / 1000))
}

# A dmsetup script taking one instant across dm-linear volumes, as snapsetd's dm-snapshot
# provider does, with one process per step. Before the window: a real device with each origin's
# table, a COW file on a loop device, the snapshot device's table loaded. The window: fsfreeze -f
# all, dmsetup suspend --nolockfs all, reload each origin as a snapshot-origin, resume the
# snapshots, resume the origins, fsfreeze -u all. Then it is undone (origin tables back).
alt_dmsetup() {
	local n=$1 run=$2 dev i len t0 t1 name table loops=() tables=() names=()
	shift 2
	i=0
	for dev in "$@"; do
		name=$(dmsetup info -c --noheadings -o name "$dev")
		names+=("$name")
		table=$(dmsetup table "$name")
		tables+=("$table")
		len=$(awk '{ print $2 }' <<<"$table")
		dmsetup create "b95-dreal$i" --table "$table"
		truncate -s 8M "$cowdir/alt$i.cow"
		loops+=("$(losetup -f --show "$cowdir/alt$i.cow")")
		dmsetup create "b95-dsnap$i" --notable
		dmsetup load "b95-dsnap$i" --table "0 $len snapshot /dev/mapper/b95-dreal$i ${loops[i]} N 8"
		i=$((i + 1))
	done
	alt_writer_start "$@"
	t0=$(now_usec)
	for dev in "$@"; do fsfreeze -f "${mnt[$dev]}"; done
	for name in "${names[@]}"; do dmsetup suspend --nolockfs "$name"; done
	for ((i = 0; i < n; i++)); do
		len=$(awk '{ print $2 }' <<<"${tables[i]}")
		dmsetup load "${names[i]}" --table "0 $len snapshot-origin /dev/mapper/b95-dreal$i"
	done
	for ((i = 0; i < n; i++)); do dmsetup resume "b95-dsnap$i"; done
	for name in "${names[@]}"; do dmsetup resume "$name"; done
	for dev in "$@"; do fsfreeze -u "${mnt[$dev]}"; done
	t1=$(now_usec)
	alt_writer_stop
	# Undone: the origins get their tables back, then the snapshots and real devices go.
	for ((i = 0; i < n; i++)); do
		dmsetup load "${names[i]}" --table "${tables[i]}"
		dmsetup suspend --nolockfs "${names[i]}"
		dmsetup resume "${names[i]}"
		dmsetup remove --retry "b95-dsnap$i"
		dmsetup remove --retry "b95-dreal$i"
		losetup -d "${loops[i]}"
		rm -f "$cowdir/alt$i.cow"
	done
	udevadm settle
	alt_record --arg alternative dmsetup-script --arg kind dm-snapshot --argjson n "$n" --argjson run "$run" \
		--argjson windowUsec $((t1 - t0)) --argjson writerWorstUsec "$(seq_max_block "$blocks" "$t0" "$t1")"
	printf '%-18s %-12s N=%-3d run %d: window %8d us\n' dmsetup-script dm-snapshot "$n" "$run" $((t1 - t0))
}

# fio, 4k random direct writes to a file on the origin's filesystem (written in full before, so
# that every write overwrites), SECONDS each, after each COUNT (ascending: 0 1 4) snapshots
# (snapset sets of that one volume).
# Classic snapshots copy each first write of a chunk into every snapshot's store; thin ones
# allocate once for all of them.
alt_fio() {
	local kind=$1 lv=$2 seconds=$3 dir file snaps=0 ids=() want id json
	shift 3
	dir=$(mktemp -d "$SNAPSET_VM_TMP/fio.XXXXXX")
	mount "$lv" "$dir"
	defer "umount $dir 2>/dev/null || true"
	file=$dir/fio.data
	dd if=/dev/urandom of="$file" bs=1M count=16 conv=fsync status=none
	for want in "$@"; do
		while ((snaps < want)); do
			id=$(snapsetctl --timeout="$(scaled 300)" --json create --cow-size=48M "$lv" | jq -r .id) ||
				fail "snapsetctl create $lv (fio) failed"
			defer "snapsetctl delete $id >/dev/null 2>&1 || true"
			ids+=("$id")
			snaps=$((snaps + 1))
		done
		json=$(fio --name=origin --filename="$file" --rw=randwrite --bs=4k --direct=1 --ioengine=psync \
			--size=16M --time_based --runtime="$seconds" --output-format=json) || fail "fio on $lv failed"
		alt_record --arg alternative fio --arg kind "lvm-$kind" --argjson snapshots "$want" \
			--argjson iops "$(jq '.jobs[0].write.iops' <<<"$json")" \
			--argjson p99Usec "$(jq '.jobs[0].write.clat_ns.percentile["99.000000"] / 1000' <<<"$json")"
		printf '%-18s %-12s after %d snapshot(s): %8.0f writes/s, p99 %8.0f us\n' fio "lvm-$kind" "$want" \
			"$(jq '.jobs[0].write.iops' <<<"$json")" "$(jq '.jobs[0].write.clat_ns.percentile["99.000000"] / 1000' <<<"$json")"
	done
	for id in "${ids[@]}"; do
		snapsetctl --timeout="$(scaled 300)" delete "$id" >/dev/null || fail "snapsetctl delete $id (fio) failed"
	done
	umount "$dir"
}
