#!/usr/bin/env bash
# bench/debian.sh [DIR] (also `bench/run.sh debian [DIR]`) - times `ocipack build` of a
# Debian-sized project (20 images × 8 architectures, 1 GiB of tar, inputs .tar.xz made with
# xz -0, written to DIR by bench/gen_debian.sh; default target/bench-debian): a full build, a
# build with nothing changed, a build with one input changed, that input's own build, and
# `xz -dc | pigz` over every input in the same run, per byte of tar. The project, its layouts
# and records are deleted at the end (KEEP=1 keeps them).
#
#   RUNS=n    time every command n times and report the median (default 1)
#   JOBS=n    threads for ocipack and pigz (default: nproc)
#
# Needs xz, pigz, GNU tar, coreutils, awk, jq and GNU time (/usr/bin/time, Debian `time`).
# Each timing records the 1-minute load average at its start: the machine may be shared.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-1}
jobs=${JOBS:-$(nproc)}
work="$root/target/bench-debian-work"

for tool in tar pigz xz sha256sum jq /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin ocipack
ocipack="$root/target/release/ocipack"

# measure NAME COMMAND [SETUP]: runs COMMAND (bash) $runs times, each after an untimed
# SETUP; records the median wall time with its CPU time and peak RSS (of the largest
# single process) in $work/NAME.time, and the load average at the start of each run in
# $work/NAME.load.
measure() {
	local name=$1 cmd=$2 setup=${3:-true} i
	echo "bench: $name" >&2
	for ((i = 0; i < runs; i++)); do
		bash -c "$setup"
		cut -d' ' -f1 /proc/loadavg >>"$work/$name.load"
		/usr/bin/time -f '%e %U %S %M' -o "$work/$name.t$i" bash -c "set -eo pipefail; $cmd"
	done
	cat "$work/$name".t* | sort -n | sed -n "$(((runs + 1) / 2))p" >"$work/$name.time"
}

field() { cut -d' ' -f"$2" "$work/$1.time"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

# loads NAME: the load averages at the start of NAME's runs ("3.1" or "2.9–3.4").
loads() { sort -n "$work/$1.load" | awk 'NR == 1 { lo = $1 } { hi = $1 } END { print (lo == hi ? lo : lo "–" hi) }'; }

# bench_debian DIR: the Debian-sized project (see the header): a full build, nothing
# changed, one input changed, that input's own build, and the xz -dc | pigz reference.
bench_debian() {
	local dir=$1 xdg="$work/xdg" one=amd64/bookworm
	"$root/bench/gen_debian.sh" "$dir"
	local input="$dir/rootfs/$one/rootfs.tar.xz"
	# The changed input: the same files, one second newer (every header differs), made once;
	# each run of the "one input changed" build swaps it with the original first.
	cp "$input" "$work/one-a.tar.xz"
	xz -dc "$input" | tar -tf - | sed 's|^|/|' >"$work/one.list"
	tar -C / --verbatim-files-from -T "$work/one.list" --owner=0 --group=0 --numeric-owner \
		--mtime=@1733097601 --format=gnu -cf - 2>/dev/null | xz -0 -T1 -c >"$work/one-b.tar.xz"
	printf '#!/bin/sh\nif cmp -s %q %q; then cp %q %q; else cp %q %q; fi\n' \
		"$input" "$work/one-a.tar.xz" "$work/one-b.tar.xz" "$input" "$work/one-a.tar.xz" "$input" \
		>"$work/flip-one.sh"
	chmod +x "$work/flip-one.sh"
	local clean="cd '$dir' && rm -rf amd64 arm32v5 arm32v7 arm64v8 i386 ppc64le riscv64 s390x '$xdg'"
	# The project is not in a git repository: records go to $XDG_CACHE_HOME/ocipack.
	export XDG_CACHE_HOME="$xdg"
	echo "bench: warming the page cache with one read of $dir/rootfs" >&2
	cat "$dir"/rootfs/*/*/rootfs.tar.xz >/dev/null
	echo "bench: debian, full build" >&2
	measure debian-full "'$ocipack' build -j $jobs --json '$dir' >'$work/debian-full.json'" "$clean"
	echo "bench: debian, nothing changed" >&2
	measure debian-none "'$ocipack' build -j $jobs '$dir' >/dev/null"
	echo "bench: debian, one input changed" >&2
	measure debian-one "'$ocipack' build -j $jobs '$dir' >/dev/null" "'$work/flip-one.sh'"
	echo "bench: debian, that input alone" >&2
	measure debian-own "'$ocipack' build -j $jobs --no-cache --image ${one#*/} --arch ${one%/*} '$dir' >/dev/null"
	echo "bench: debian, xz -dc | pigz -p$jobs" >&2
	measure debian-pigz "for f in '$dir'/rootfs/*/*/rootfs.tar.xz; do xz -dc \"\$f\" | tee >(sha256sum >/dev/null) | pigz -n -6 -p$jobs | tee >(wc -c >>'$work/pigz.sizes') | sha256sum >/dev/null; done" ": >'$work/pigz.sizes'"
	cmp -s "$input" "$work/one-a.tar.xz" || cp "$work/one-a.tar.xz" "$input"

	local tar_bytes gz_bytes pigz_bytes xz_bytes layouts full p
	tar_bytes=$(jq '[.images[].layer.uncompressedSize] | add' "$work/debian-full.json")
	gz_bytes=$(jq '[.images[].layer.size] | add' "$work/debian-full.json")
	layouts=$(jq '.images | length' "$work/debian-full.json")
	pigz_bytes=$(awk '{ s += $1 } END { print s }' "$work/pigz.sizes")
	xz_bytes=$(cat "$dir"/rootfs/*/*/rootfs.tar.xz | wc -c)
	full=$(field debian-full 1)
	p=$(field debian-pigz 1)
	drow() { # NAME LABEL
		local t
		t=$(field "$1" 1)
		printf '| %s | %.2f | %s | %s | %s | %s |\n' "$2" "$t" "$(calc '%.1f %%' "100 * $t / $full")" \
			"$(calc '%.1f' "$(field "$1" 2) + $(field "$1" 3)")" \
			"$(calc '%.0f' "$(field "$1" 4) / 1024")" "$(loads "$1")"
	}
	prow() { # NAME LABEL BYTES
		local t
		t=$(field "$1" 1)
		printf '| %s | %.2f | %s | %s | %s | %s | %s |\n' "$2" "$t" "$(calc '%.0f' "$tar_bytes / $t / 1e6")" "$3" \
			"$(calc '%.1f' "$(field "$1" 2) + $(field "$1" 3)")" \
			"$(calc '%.0f' "$(field "$1" 4) / 1024")" "$(loads "$1")"
	}
	echo
	echo "Debian-sized project: $layouts layouts (20 images × 8 architectures), $tar_bytes bytes of tar" \
		"in $xz_bytes bytes of .tar.xz (xz -0); layers $gz_bytes bytes (gzip)."
	echo
	echo "| \`ocipack build -j$jobs\` | time (s) | of the full build | CPU (s) | peak RSS (MiB) | load average |"
	echo "|---|---|---|---|---|---|"
	drow debian-full "full (no layouts, no records)"
	drow debian-none "nothing changed"
	drow debian-one "one input changed (${one#*/} ${one%/*})"
	drow debian-own "that input's own build (\`--no-cache --image ${one#*/} --arch ${one%/*}\`)"
	echo
	echo "| every input, per byte of tar | time (s) | MB/s | output bytes | CPU (s) | peak RSS (MiB) | load average |"
	echo "|---|---|---|---|---|---|---|"
	prow debian-full "\`ocipack build\`, full" "$gz_bytes"
	prow debian-pigz "\`xz -dc \\| pigz -n -6 -p$jobs\` (+ sha256sum ×2), one input after another" "$pigz_bytes"
	echo
	echo "ocipack: $(calc '%.2f' "$p / $full")× the pipeline's speed at $(calc '%.3f' "$gz_bytes / $pigz_bytes")× its size;" \
		"$jobs threads; $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); median of $runs run(s)."
	unset XDG_CACHE_HOME
	if [ "${KEEP:-}" != 1 ]; then
		rm -rf "$dir" "$xdg" "$work"/one-*.tar.xz
	fi
}

rm -rf "$work"
mkdir -p "$work"
bench_debian "${1:-$root/target/bench-debian}"
