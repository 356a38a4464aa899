#!/usr/bin/env bash
# bench/run.sh [TREE] - times `ocipack image` against the shell pipelines a maintainer would
# otherwise use, on the same tree in the same run, and prints a Markdown table.
#
#   TREE      directory to pack (default: a generated tree, cached in target/bench-tree-1024m)
#   RUNS=n    time every command n times and report the median (default 1)
#   JOBS=n    threads for ocipack, pigz and zstd (default: nproc)
#   SIZE_MIB  size in MiB of the generated tree (default 1024: ~3300 files)
#
# Needs GNU tar, gzip, pigz, zstd, coreutils, awk, jq and GNU time (/usr/bin/time, Debian `time`).
# The page cache is warmed with one untimed read of the tree before anything is timed.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-1}
jobs=${JOBS:-$(nproc)}
epoch=1700000000
work="$root/target/bench"

for tool in tar gzip pigz zstd sha256sum jq /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin ocipack --example bench-tree
ocipack="$root/target/release/ocipack"
if [ $# -ge 1 ]; then
	tree=$(cd "$1" && pwd)
else
	tree="$root/target/bench-tree-${SIZE_MIB:-1024}m"
	"$root/target/release/examples/bench-tree" "$tree" "${SIZE_MIB:-1024}"
fi
rm -rf "$work"
mkdir -p "$work"

load_start=$(cut -d' ' -f1 /proc/loadavg)
echo "bench: warming the page cache with one read of $tree" >&2
tar -C "$tree" -cf - . | cat >/dev/null

tar_cmd="tar --sort=name --numeric-owner --owner=0 --group=0 --mtime=@$epoch --clamp-mtime -C '$tree' -c ."

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

# Reference pipelines. The compressed stream's size is counted with wc -c on a tee.
sha="sha256sum >/dev/null"
measure tar-sha256 "$tar_cmd | $sha"
measure tar-gzip "$tar_cmd | tee >($sha) | gzip -n -6 | tee >(wc -c >'$work/tar-gzip.size') | $sha"
measure tar-pigz "$tar_cmd | tee >($sha) | pigz -n -6 -p$jobs | tee >(wc -c >'$work/tar-pigz.size') | $sha"
measure tar-zstd "$tar_cmd | tee >($sha) | zstd -q -3 -T$jobs | tee >(wc -c >'$work/tar-zstd.size') | $sha"
bash -c "$tar_cmd" | wc -c >"$work/tar-sha256.size"

for c in none gzip zstd; do
	# Each run writes a new layout rather than replacing (deleting) the previous one.
	measure "ocipack-$c" "'$ocipack' image --rootfs '$tree' --arch amd64 --created @$epoch \
		--compression $c -j $jobs -o '$work/layout-$c' --json >'$work/ocipack-$c.json'" \
		"rm -rf '$work/layout-$c'"
	jq -r .layer.size "$work/ocipack-$c.json" >"$work/ocipack-$c.size"
done
input=$(jq -r .layer.uncompressedSize "$work/ocipack-none.json")

# The hello-world example: `ocipack build` of its project (ten architectures), on a fresh
# copy of the project each time, so that the checkout is never written to.
measure hello-world "'$ocipack' build '$work/hello-world' >/dev/null" \
	"rm -rf '$work/hello-world' && cp -a '$root/examples/hello-world' '$work/'"

field() { cut -d' ' -f"$2" "$work/$1.time"; }
calc() { awk "BEGIN { printf \"$1\", $2 }"; }
row() { # NAME LABEL [REFERENCE...]: one table row; ocipack's speed-up over each REFERENCE
	local name=$1 label=$2 t size vs="" r
	shift 2
	t=$(field "$name" 1)
	size=$(cat "$work/$name.size")
	for r in "$@"; do
		vs+="$(calc '%.2f' "$(field "$r" 1) / $t")× vs ${r#tar-}, "
	done
	printf '| %s | %.2f | %s | %s | %s | %s | %s | %s |\n' "$label" "$t" \
		"$(calc '%.0f' "$input / $t / 1e6")" "$size" "$(calc '%.3f' "$size / $input")" \
		"$(calc '%.1f' "$(field "$name" 2) + $(field "$name" 3)")" \
		"$(calc '%.0f' "$(field "$name" 4) / 1024")" "${vs%, }"
}

echo
echo "Tree: $tree, tar stream $input bytes; $jobs threads for ocipack, pigz and zstd;"
echo "$(nproc) CPUs ($(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)); median of $runs run(s);" \
	"load average $load_start at the start, $(cut -d' ' -f1 /proc/loadavg) at the end (other work skews times, not CPU)."
echo
echo "| command | time (s) | MB/s | output bytes | output/input | CPU (s) | peak RSS (MiB) | ocipack speed-up |"
echo "|---|---|---|---|---|---|---|---|"
row tar-sha256 'tar \| sha256sum'
row tar-gzip 'tar \| gzip -6 (+ sha256sum ×2)'
row tar-pigz "tar \\| pigz -6 -p$jobs (+ sha256sum ×2)"
row tar-zstd "tar \\| zstd -3 -T$jobs (+ sha256sum ×2)"
row ocipack-none 'ocipack --compression none' tar-sha256
row ocipack-gzip 'ocipack --compression gzip' tar-gzip tar-pigz
row ocipack-zstd 'ocipack --compression zstd' tar-zstd
echo
echo "ocipack gzip size / pigz size: $(calc '%.4f' "$(cat "$work/ocipack-gzip.size") / $(cat "$work/tar-pigz.size")")"
echo "hello-world example, ten architectures (\`ocipack build examples/hello-world\`):" \
	"$(calc '%.0f' "$(field hello-world 1) * 1000") ms"
