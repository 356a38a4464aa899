#!/usr/bin/env bash
# bench/run.sh [TREE...] - times `ocipack image` against the machine's limits and against the
# shell pipelines a maintainer would otherwise use, on the same trees in the same run, then
# measures peak memory on a tree of a million entries and times the hello-world example;
# prints Markdown tables.
#
# bench/run.sh debian [DIR] - runs bench/debian.sh: incremental builds of a Debian-sized
# project (see that script).
#
#   TREE...   directories to pack (default: a generated tree, cached in
#             target/bench-tree-1024m, and /usr/lib/x86_64-linux-gnu when it exists)
#   RUNS=n    rounds (default 5): every timed command runs once per round, the rounds
#             interleave the commands, and each row is the median of its n runs
#   JOBS=n    threads for ocipack, pigz, zstd and the compressors' limit (default: nproc)
#   SIZE_MIB  size in MiB of the generated tree (default 1024: ~3300 files)
#   ROOTFS=n  copies of the synthetic root filesystem in the memory tree (default 150:
#             1,016,938 entries, cached in target/bench-rootfs-n); 0 skips that part
#   PIPELINES=0  leaves out the shell pipelines (single-threaded gzip -6 alone is most of a
#             run's time), keeping ocipack and its limits
#
# The limits, timed in the same rounds as ocipack, on the same bytes:
# - the compressor alone: `bench-limit` (bench/limit.rs) with the pinned libdeflate and
#   libzstd ocipack links, at the same levels and block or job sizes, on every core, memory
#   to memory (the layer's tar read into memory before the clock starts; no hashing, no
#   check, no file I/O);
# - SHA-256 alone, one thread, memory to memory: the diff_id every layer needs;
# - the disk: an O_DIRECT write (`dd oflag=direct bs=1M`) of exactly the bytes ocipack
#   wrote, from the page cache.
# ocipack's fraction of a limit is the limit's median time over ocipack's (100 % = at it);
# for gzip and zstd also the compressor's CPU time over ocipack's, what the fraction would be
# with both cores kept busy (other load on the machine skews it far less).
#
# Needs GNU tar, gzip, pigz, zstd, coreutils, awk, jq, hyperfine and GNU time (/usr/bin/time,
# Debian `time`). Each tree's page cache is warmed with one untimed read before it is timed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ "${1:-}" = debian ]; then
	shift
	exec "$root/bench/debian.sh" "$@"
fi
runs=${RUNS:-5}
jobs=${JOBS:-$(nproc)}
copies=${ROOTFS:-150}
pipelines=${PIPELINES:-1}
epoch=1700000000
work="$root/target/bench"
started=$(date +%s)

for tool in tar gzip pigz zstd sha256sum jq hyperfine dd /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin ocipack \
	--example bench-tree --example bench-limit --example bench-rootfs
ocipack="$root/target/release/ocipack"
limit="$root/target/release/examples/bench-limit"
trees=()
if [ $# -ge 1 ]; then
	for t in "$@"; do trees+=("$(cd "$t" && pwd)"); done
else
	generated="$root/target/bench-tree-${SIZE_MIB:-1024}m"
	"$root/target/release/examples/bench-tree" "$generated" "${SIZE_MIB:-1024}"
	trees+=("$generated")
	[ -d /usr/lib/x86_64-linux-gnu ] && trees+=(/usr/lib/x86_64-linux-gnu)
fi
rm -rf "$work"
mkdir -p "$work"
load_start=$(cut -d' ' -f1 /proc/loadavg)

# Timed commands: NAME, the command (bash) and an untimed setup run before it. Every round
# runs each once, in this order; `median` then picks each one's middle run.
names=() cmds=() setups=()
add() { names+=("$1"); cmds+=("$2"); setups+=("${3:-true}"); }

# run_rounds: runs every added command $runs times, interleaved, recording
# `wall user sys maxrss_kib` of each run in $work/NAME.tN (N, the round, is $ROUND in the
# command).
run_rounds() {
	local i k
	for ((i = 0; i < runs; i++)); do
		echo "bench: round $((i + 1)) of $runs ($(cut -d' ' -f1 /proc/loadavg) load)" >&2
		for k in "${!names[@]}"; do
			bash -c "${setups[$k]}"
			ROUND=$i /usr/bin/time -f '%e %U %S %M' -o "$work/${names[$k]}.t$i" \
				bash -c "set -eo pipefail; ${cmds[$k]}"
		done
	done
	for k in "${!names[@]}"; do median "${names[$k]}"; done
}

# median NAME: the run with the median wall time (its CPU and RSS with it) -> NAME.time;
# a limit that reports its own time (bench-limit: the work alone, without reading its
# input) has NAME.oN files, whose median replaces the wall and CPU times.
median() {
	local name=$1 mid=$(((runs + 1) / 2))
	cat "$work/$name".t* | sort -n | sed -n "${mid}p" >"$work/$name.time"
	if ls "$work/$name".o* >/dev/null 2>&1; then
		cat "$work/$name".o* | sort -n | sed -n "${mid}p" >"$work/$name.own"
		awk 'NR == FNR { w = $1; c = $2; next } { print w, c, 0, $4 }' \
			"$work/$name.own" "$work/$name.time" >"$work/$name.time.new"
		mv "$work/$name.time.new" "$work/$name.time"
	fi
}

field() { cut -d' ' -f"$2" "$work/$1.time"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

bench_tree() {
	local tree=$1 tag=$2 input c
	echo "bench: warming the page cache with one read of $tree" >&2
	tar -C "$tree" -cf - . | cat >/dev/null
	# Owners are kept on both sides: a system tree such as /usr/lib holds setgid entries of
	# other groups (utempter), which ocipack refuses to make setgid root (--owners zero).
	local tar_cmd="tar --sort=name --numeric-owner --mtime=@$epoch --clamp-mtime -C '$tree' -c ."
	local sha="sha256sum >/dev/null"
	local image="'$ocipack' image --rootfs '$tree' --owners keep --arch amd64 --created @$epoch -j $jobs"
	# The bytes every limit works on: the layer's tar stream and each blob, copied through
	# the page cache (written with O_DIRECT, the blobs themselves are not in it).
	for c in none gzip zstd; do
		"$ocipack" image --rootfs "$tree" --owners keep --arch amd64 --created @$epoch -j "$jobs" \
			--compression $c -o "$work/ref-$c" --json >"$work/$tag-ref-$c.json"
		cat "$work/ref-$c/blobs/sha256/$(jq -r '.layer.digest | sub("sha256:"; "")' \
			"$work/$tag-ref-$c.json")" >"$work/$tag-$c.blob"
		jq -r .layer.size "$work/$tag-ref-$c.json" >"$work/$tag-ocipack-$c.size"
		rm -rf "$work/ref-$c"
	done
	input=$(jq -r .layer.uncompressedSize "$work/$tag-ref-none.json")
	names=() cmds=() setups=()
	if [ "$pipelines" != 0 ]; then
		add "$tag-tar-sha256" "$tar_cmd | $sha"
		add "$tag-tar-gzip" "$tar_cmd | tee >($sha) | gzip -n -6 | tee >(wc -c >'$work/$tag-tar-gzip.size') | $sha"
		add "$tag-tar-pigz" "$tar_cmd | tee >($sha) | pigz -n -6 -p$jobs | tee >(wc -c >'$work/$tag-tar-pigz.size') | $sha"
		add "$tag-tar-zstd" "$tar_cmd | tee >($sha) | zstd -q -3 -T$jobs | tee >(wc -c >'$work/$tag-tar-zstd.size') | $sha"
	fi
	for c in none gzip zstd; do
		# Each run writes a new layout rather than replacing (deleting) the previous one.
		add "$tag-ocipack-$c" "$image --compression $c -o '$work/layout-$c' -q >/dev/null" "rm -rf '$work/layout-$c'"
		add "$tag-dd-$c" "dd if='$work/$tag-$c.blob' of='$work/dd.bin' bs=1M oflag=direct status=none" \
			"rm -f '$work/dd.bin'; cat '$work/$tag-$c.blob' >/dev/null"
	done
	for c in sha256 gzip zstd; do
		threads=$jobs
		[ $c = sha256 ] && threads=1
		add "$tag-limit-$c" "'$limit' $c '$work/$tag-none.blob' $threads >'$work/$tag-limit-$c.o'\$ROUND"
	done
	run_rounds
	rm -rf "$work/layout-"* "$work/dd.bin"
	for c in none gzip zstd; do
		cp "$work/$tag-ocipack-$c.size" "$work/$tag-dd-$c.size"
	done
	for c in gzip zstd; do cut -d' ' -f3 "$work/$tag-limit-$c.own" >"$work/$tag-limit-$c.size"; done
	echo "$input" >"$work/$tag-tar-sha256.size"
	echo - >"$work/$tag-limit-sha256.size"

	row() { # NAME LABEL [vs TEXT]: one table row
		local name=$1 label=$2 vs=${3:-} t size
		t=$(field "$name" 1)
		size=$(cat "$work/$name.size")
		printf '| %s | %.2f | %s | %s | %s | %s | %s | %s |\n' "$label" "$t" \
			"$(calc '%.0f' "$input / $t / 1e6")" "$size" \
			"$([ "$size" = - ] && echo - || calc '%.3f' "$size / $input")" \
			"$(calc '%.1f' "$(field "$name" 2) + $(field "$name" 3)")" \
			"$(calc '%.0f' "$(field "$name" 4) / 1024")" "$vs"
	}
	# speedup NAME REF: "; 2.95× vs REF at 0.995× its size" (nothing without the pipelines)
	speedup() {
		local s
		[ -f "$work/$2.time" ] || return 0
		s="$(calc '%.2f' "$(field "$2" 1) / $(field "$1" 1)")× vs ${2#"$tag"-tar-}"
		case $2 in *gzip | *pigz | *zstd)
			s+=" at $(calc '%.3f' "$(cat "$work/$1.size") / $(cat "$work/$2.size")")× its size" ;;
		esac
		echo "; $s"
	}
	# fraction NAME LIMIT...: "**97 %** of its limit (dd-none 0.55 s, limit-sha256 0.53 s)",
	# against the slowest of the limits (the one that binds).
	fraction() {
		local name=$1 t bind=0 l lt parts=""
		shift
		t=$(field "$name" 1)
		for l in "$@"; do
			lt=$(field "$l" 1)
			parts+="${parts:+, }${l#"$tag"-} $lt s"
			bind=$(calc '%s' "($lt > $bind) ? $lt : $bind")
		done
		echo "**$(calc '%.0f' "100 * $bind / $t") %** of its limit ($parts)"
	}
	# cpu_share NAME LIMIT: the limit's CPU time over ocipack's, what the fraction would be
	# with both kept equally busy (load on the machine skews it far less than wall times).
	cpu_share() {
		echo "$(calc '%.0f' "100 * ($(field "$2" 2) + $(field "$2" 3)) / ($(field "$1" 2) + $(field "$1" 3))") % by CPU time"
	}

	echo
	echo "Tree: $tree, tar stream $input bytes, $(find "$tree" -type f | wc -l) files."
	echo
	echo "| command | time (s) | MB/s | output bytes | output/input | CPU (s) | peak RSS (MiB) | vs |"
	echo "|---|---|---|---|---|---|---|---|"
	if [ "$pipelines" != 0 ]; then
		row "$tag-tar-sha256" 'tar \| sha256sum'
		row "$tag-tar-gzip" 'tar \| gzip -6 (+ sha256sum ×2)'
		row "$tag-tar-pigz" "tar \\| pigz -6 -p$jobs (+ sha256sum ×2)"
		row "$tag-tar-zstd" "tar \\| zstd -3 -T$jobs (+ sha256sum ×2)"
	fi
	row "$tag-limit-sha256" 'limit: SHA-256 alone (1 thread, memory to memory)'
	row "$tag-limit-gzip" "limit: libdeflate level 5 alone, 1 MiB blocks, $jobs threads, memory to memory"
	row "$tag-limit-zstd" "limit: libzstd level 3 alone, $jobs workers, 8 MiB jobs, memory to memory"
	for c in none gzip zstd; do
		row "$tag-dd-$c" "limit: dd oflag=direct bs=1M of the $c blob"
	done
	row "$tag-ocipack-none" 'ocipack --compression none' \
		"$(fraction "$tag-ocipack-none" "$tag-dd-none" "$tag-limit-sha256")$(speedup "$tag-ocipack-none" "$tag-tar-sha256")"
	row "$tag-ocipack-gzip" 'ocipack --compression gzip' \
		"$(fraction "$tag-ocipack-gzip" "$tag-limit-gzip" "$tag-dd-gzip"), $(cpu_share "$tag-ocipack-gzip" "$tag-limit-gzip")$(speedup "$tag-ocipack-gzip" "$tag-tar-gzip")$(speedup "$tag-ocipack-gzip" "$tag-tar-pigz")"
	row "$tag-ocipack-zstd" 'ocipack --compression zstd' \
		"$(fraction "$tag-ocipack-zstd" "$tag-limit-zstd" "$tag-dd-zstd"), $(cpu_share "$tag-ocipack-zstd" "$tag-limit-zstd")$(speedup "$tag-ocipack-zstd" "$tag-tar-zstd")"
	rm -f "$work/$tag-"*.blob
}

n=0
for tree in "${trees[@]}"; do
	n=$((n + 1))
	bench_tree "$tree" "t$n"
done

# Memory per entry: a tree of ~10^6 entries shaped like root filesystems, once per
# compression (peak RSS barely varies between runs; its time is given, not compared).
if [ "$copies" -gt 0 ]; then
	mem_tree="$root/target/bench-rootfs-$copies"
	entries=$("$root/target/release/examples/bench-rootfs" "$mem_tree" "$copies")
	echo "bench: warming the page cache with one read of $mem_tree" >&2
	tar -C "$mem_tree" -cf - . | cat >/dev/null
	echo
	echo "Memory: $mem_tree, $entries entries ($(find "$mem_tree" -type d | wc -l) directories), one run each:"
	echo
	echo "| command | time (s) | CPU (s) | peak RSS (MiB) | tar stream bytes |"
	echo "|---|---|---|---|---|"
	for c in none gzip zstd; do
		echo "bench: memory, $c" >&2
		rm -rf "$work/layout-mem"
		/usr/bin/time -f '%e %U %S %M' -o "$work/mem-$c.time" "$ocipack" image --rootfs "$mem_tree" \
			--arch amd64 --created @$epoch -j "$jobs" --compression $c -o "$work/layout-mem" \
			--json >"$work/mem-$c.json"
		read -r e u s m <"$work/mem-$c.time"
		printf '| ocipack --compression %s | %.1f | %.1f | %.0f | %s |\n' "$c" "$e" \
			"$(calc '%.1f' "$u + $s")" "$(calc '%.0f' "$m / 1024")" \
			"$(jq -r .layer.uncompressedSize "$work/mem-$c.json")"
	done
	rm -rf "$work/layout-mem"
fi

# The hello-world example: `ocipack build` of its project (ten architectures) on a copy, so
# that the checkout is never written to: with nothing changed, with all ten changed (the
# copy's `created` alternates between two times, so every layout differs from the last run),
# and `--check`.
hw="$work/hello-world"
rm -rf "$hw" && cp -a "$root/examples/hello-world" "$hw"
"$ocipack" build "$hw" >/dev/null
flip="$work/flip-created.sh"
cat >"$flip" <<EOF
#!/bin/sh
if grep -q '^created = 2026-11-26T19:48:15Z' '$hw/ocipack.toml'; then
	sed -i 's/^created = .*/created = 2026-11-26T19:48:16Z/' '$hw/ocipack.toml'
else
	sed -i 's/^created = .*/created = 2026-11-26T19:48:15Z/' '$hw/ocipack.toml'
fi
EOF
chmod +x "$flip"
echo "bench: hello-world (hyperfine)" >&2
hyperfine --style none --warmup 3 --runs 30 --export-json "$work/hw.json" \
	-n unchanged "'$ocipack' build '$hw'" \
	-n check "'$ocipack' build --check '$hw'" >/dev/null 2>&1
hyperfine --style none --warmup 2 --runs 30 --export-json "$work/hw-changed.json" \
	--prepare "$flip" -n all-changed "'$ocipack' build '$hw'" >/dev/null 2>&1
ms() { jq -r --arg n "$2" '.results[] | select(.command == $n) | "\(.median * 1000 | floor) ms median (\(.min * 1000 | floor)–\(.max * 1000 | floor)), \(.user * 1000 | floor) ms user, \(.system * 1000 | floor) ms sys"' "$work/$1"; }

echo
echo "hello-world example, ten architectures, hyperfine (30 runs after warm-up):"
echo
echo "| \`ocipack build examples/hello-world\` | time |"
echo "|---|---|"
echo "| nothing changed (nothing written, flushed or touched) | $(ms hw.json unchanged) |"
echo "| all ten architectures changed | $(ms hw-changed.json all-changed) |"
echo "| \`--check\` | $(ms hw.json check) |"
echo
echo "$jobs threads for ocipack, pigz, zstd and the limits; $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1));" \
	"median of $runs interleaved run(s); load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end" \
	"(other work skews times, not CPU); $(($(date +%s) - started)) s in all."
