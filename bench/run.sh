#!/usr/bin/env bash
# bench/run.sh [TREE...] - times `ocipack image` against the shell pipelines a maintainer would
# otherwise use, on the same trees in the same run, beside the disk's own ceiling, and times
# the hello-world example three ways; prints Markdown tables.
#
#   TREE...   directories to pack (default: a generated tree, cached in
#             target/bench-tree-1024m, and /usr/lib/x86_64-linux-gnu when it exists)
#   RUNS=n    time every command n times and report the median (default 1)
#   JOBS=n    threads for ocipack, pigz and zstd (default: nproc)
#   SIZE_MIB  size in MiB of the generated tree (default 1024: ~3300 files)
#
# Needs GNU tar, gzip, pigz, zstd, coreutils, awk, jq, hyperfine and GNU time (/usr/bin/time,
# Debian `time`). Each tree's page cache is warmed with one untimed read before it is timed.
# The disk ceiling is an O_DIRECT write (dd oflag=direct) of as many bytes as the output:
# what the disk itself needs to store it, whatever computes it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-1}
jobs=${JOBS:-$(nproc)}
epoch=1700000000
work="$root/target/bench"

for tool in tar gzip pigz zstd sha256sum jq hyperfine dd /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin ocipack --example bench-tree
ocipack="$root/target/release/ocipack"
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

# measure NAME COMMAND [SETUP]: runs COMMAND (bash) $runs times, each after an untimed
# SETUP; records the median wall time with its CPU time and peak RSS (of the largest
# single process) in $work/NAME.time.
measure() {
	local name=$1 cmd=$2 setup=${3:-true} i
	echo "bench: $name" >&2
	for ((i = 0; i < runs; i++)); do
		bash -c "$setup"
		/usr/bin/time -f '%e %U %S %M' -o "$work/$name.t$i" bash -c "set -eo pipefail; $cmd"
	done
	cat "$work/$name".t* | sort -n | sed -n "$(((runs + 1) / 2))p" >"$work/$name.time"
}

# ceiling NAME BYTES: the time an O_DIRECT write of BYTES takes on this disk, in $work.
ceiling() {
	local name=$1 bytes=$2 mib
	mib=$(((bytes + 1048575) / 1048576))
	/usr/bin/time -f '%e' -o "$work/$name.ceiling" \
		dd if=/dev/zero of="$work/ceiling.bin" bs=1M count="$mib" oflag=direct status=none
	rm -f "$work/ceiling.bin"
}

field() { cut -d' ' -f"$2" "$work/$1.time"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }

bench_tree() {
	local tree=$1 tag=$2 input
	echo "bench: warming the page cache with one read of $tree" >&2
	tar -C "$tree" -cf - . | cat >/dev/null
	local tar_cmd="tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@$epoch --clamp-mtime -C '$tree' -c ."
	local sha="sha256sum >/dev/null"
	measure "$tag-tar-sha256" "$tar_cmd | $sha"
	measure "$tag-tar-gzip" "$tar_cmd | tee >($sha) | gzip -n -6 | tee >(wc -c >'$work/$tag-tar-gzip.size') | $sha"
	measure "$tag-tar-pigz" "$tar_cmd | tee >($sha) | pigz -n -6 -p$jobs | tee >(wc -c >'$work/$tag-tar-pigz.size') | $sha"
	measure "$tag-tar-zstd" "$tar_cmd | tee >($sha) | zstd -q -3 -T$jobs | tee >(wc -c >'$work/$tag-tar-zstd.size') | $sha"
	bash -c "$tar_cmd" | wc -c >"$work/$tag-tar-sha256.size"
	for c in none gzip zstd; do
		# Each run writes a new layout rather than replacing (deleting) the previous one.
		measure "$tag-ocipack-$c" "'$ocipack' image --rootfs '$tree' --arch amd64 --created @$epoch \
			--compression $c -j $jobs -o '$work/layout-$c' --json >'$work/$tag-ocipack-$c.json'" \
			"rm -rf '$work/layout-$c'"
		jq -r .layer.size "$work/$tag-ocipack-$c.json" >"$work/$tag-ocipack-$c.size"
		ceiling "$tag-ocipack-$c" "$(cat "$work/$tag-ocipack-$c.size")"
		rm -rf "$work/layout-$c"
	done
	input=$(jq -r .layer.uncompressedSize "$work/$tag-ocipack-none.json")

	row() { # NAME LABEL [REFERENCE...]: one table row; ocipack's speed-up over each REFERENCE
		local name=$1 label=$2 t size vs="" r ceil="" sz=""
		shift 2
		t=$(field "$name" 1)
		size=$(cat "$work/$name.size")
		for r in "$@"; do
			vs+="$(calc '%.2f' "$(field "$r" 1) / $t")× vs ${r#"$tag"-tar-}"
			case $r in *gzip|*pigz|*zstd) vs+=" at $(calc '%.3f' "$size / $(cat "$work/$r.size")")× its size" ;; esac
			vs+=", "
		done
		[ -f "$work/$name.ceiling" ] && ceil=$(cat "$work/$name.ceiling")
		printf '| %s | %.2f | %s | %s | %s | %s | %s | %s | %s |\n' "$label" "$t" "${ceil:--}" \
			"$(calc '%.0f' "$input / $t / 1e6")" "$size" "$(calc '%.3f' "$size / $input")" \
			"$(calc '%.1f' "$(field "$name" 2) + $(field "$name" 3)")" \
			"$(calc '%.0f' "$(field "$name" 4) / 1024")" "${vs%, }"
	}

	echo
	echo "Tree: $tree, tar stream $input bytes, $(find "$tree" -type f | wc -l) files."
	echo
	echo "| command | time (s) | disk ceiling (s) | MB/s | output bytes | output/input | CPU (s) | peak RSS (MiB) | ocipack speed-up |"
	echo "|---|---|---|---|---|---|---|---|---|"
	row "$tag-tar-sha256" 'tar \| sha256sum'
	row "$tag-tar-gzip" 'tar \| gzip -6 (+ sha256sum ×2)'
	row "$tag-tar-pigz" "tar \\| pigz -6 -p$jobs (+ sha256sum ×2)"
	row "$tag-tar-zstd" "tar \\| zstd -3 -T$jobs (+ sha256sum ×2)"
	row "$tag-ocipack-none" 'ocipack --compression none' "$tag-tar-sha256"
	row "$tag-ocipack-gzip" 'ocipack --compression gzip' "$tag-tar-gzip" "$tag-tar-pigz"
	row "$tag-ocipack-zstd" 'ocipack --compression zstd' "$tag-tar-zstd"
}

n=0
for tree in "${trees[@]}"; do
	n=$((n + 1))
	bench_tree "$tree" "t$n"
done

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
echo "$jobs threads for ocipack, pigz and zstd; $(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1));" \
	"median of $runs run(s); load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end" \
	"(other work skews times, not CPU)."
