#!/usr/bin/env bash
# bench/run.sh [TREE...] - times `ocipack image` against the shell pipelines a maintainer would
# otherwise use, on the same trees in the same run, beside the disk's own ceiling, and times
# the hello-world example three ways; prints Markdown tables.
#
# bench/run.sh debian [DIR] - times `ocipack build` of a Debian-sized project (20 images × 8
# architectures, 1 GiB of tar, inputs .tar.xz made with xz -0, written to DIR by
# bench/gen_debian.sh; default target/bench-debian): a full build, a build with nothing
# changed, a build with one input changed, that input's own build, and `xz -dc | pigz` over
# every input in the same run, per byte of tar. The project, its layouts and records are
# deleted at the end (KEEP=1 keeps them).
#
#   TREE...   directories to pack (default: a generated tree, cached in
#             target/bench-tree-1024m, and /usr/lib/x86_64-linux-gnu when it exists)
#   RUNS=n    time every command n times and report the median (default 1)
#   JOBS=n    threads for ocipack, pigz and zstd (default: nproc)
#   SIZE_MIB  size in MiB of the generated tree (default 1024: ~3300 files)
#
# Needs GNU tar, gzip, pigz, zstd, xz, coreutils, awk, jq, hyperfine and GNU time
# (/usr/bin/time, Debian `time`). Each tree's page cache is warmed with one untimed read
# before it is timed. The disk ceiling is an O_DIRECT write (dd oflag=direct) of as many
# bytes as the output: what the disk itself needs to store it, whatever computes it. Each
# timing records the 1-minute load average at its start: the machine may be shared.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
runs=${RUNS:-1}
jobs=${JOBS:-$(nproc)}
epoch=1700000000
work="$root/target/bench"

for tool in tar gzip pigz zstd xz sha256sum jq hyperfine dd /usr/bin/time; do
	command -v "$tool" >/dev/null || { echo "bench: $tool is missing" >&2; exit 2; }
done

cargo build --release --quiet --manifest-path "$root/Cargo.toml" --bin ocipack --example bench-tree
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

if [ "${1:-}" = debian ]; then
	rm -rf "$work"
	mkdir -p "$work"
	bench_debian "${2:-$root/target/bench-debian}"
	exit 0
fi

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
