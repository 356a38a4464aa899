#!/bin/sh
# fetch.sh - assembles the busybox example's root filesystems from Debian's packages.
#
#   examples/busybox/fetch.sh [DIR]      (DIR: where ocipack.toml is; default: beside this script)
#
# Two variants, as docker-library/busybox has its glibc, uclibc and musl ones, each with its
# own architectures:
#   static  busybox-static (statically linked) for amd64 and arm64v8: DIR/build/static/ARCH/rootfs
#   glibc   busybox (dynamically linked) with the libraries of libc6 it needs, for amd64:
#           DIR/build/glibc/amd64/rootfs
# For each package it downloads the .deb with apt (apt checks it against the SHA-256 in the
# signed Packages index) and extracts it with dpkg-deb (no maintainer script runs, nothing
# is installed). Each rootfs holds /bin/busybox, one relative symlink per applet of that
# binary (/bin/sh among them), the packages' copyright files, /etc/passwd and /etc/group,
# /root 0700, /tmp 1777, empty /dev /home /var; the glibc one also the dynamic loader and
# the shared libraries busybox names (readelf), where Debian puts them. It writes
# DIR/build/SOURCE_DATE_EPOCH (the newest mtime of the files taken from the packages: their
# build time) and DIR/build/packages.txt (variant, architecture, package, version and
# SHA-256 of each .deb). Then:
#
#   SOURCE_DATE_EPOCH=$(cat DIR/build/SOURCE_DATE_EPOCH) ocipack build DIR
#
# Needs apt-get, dpkg-deb and readelf (binutils); a foreign architecture must be enabled
# once, as root: dpkg --add-architecture arm64 && apt-get update
# BUSYBOX_VERSION=1:1.35.0-4+deb12u1+b1 picks an exact version of both busybox packages (one
# the mirror still has).
set -eu
umask 022
export LC_ALL=C

dir=${1:-$(dirname "$0")}
dir=$(cd "$dir" && pwd)
build=$dir/build
# variant:bashbrew architecture:Debian architecture
layouts="static:amd64:amd64 static:arm64v8:arm64 glibc:amd64:amd64"

die() { echo "fetch.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null || die "apt-get is not installed (a Debian or Ubuntu system is needed)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed"
command -v readelf >/dev/null || die "readelf is not installed (binutils)"
native=$(dpkg --print-architecture)
for l in $layouts; do
	deb=${l##*:}
	if [ "$deb" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$deb"; then
		die "apt does not know the $deb architecture: run 'dpkg --add-architecture $deb && apt-get update' as root"
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt downloads as the unprivileged _apt user when it can write the directory.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi

# fetch PACKAGE DEBARCH VARIANT ARCH: downloads and unpacks PACKAGE:DEBARCH into
# $tmp/PACKAGE-DEBARCH (once) and records it for VARIANT ARCH in packages.txt.
: > "$tmp/packages.txt"
fetch() {
	into=$tmp/$1-$2
	if [ ! -d "$into" ]; then
		case $1 in busybox*) v=${BUSYBOX_VERSION:+=$BUSYBOX_VERSION} ;; *) v= ;; esac
		(cd "$tmp" && apt-get download -q=2 "$1:$2$v") || die "apt-get download $1:$2$v failed"
		file=$(ls "$tmp"/"$1"_*_"$2".deb)
		mkdir "$into"
		dpkg-deb -x "$file" "$into"
		echo "$(dpkg-deb -f "$file" Version) $2 sha256:$(sha256sum "$file" | cut -d' ' -f1)" > "$into.deb"
	fi
	echo "$3 $4 $1 $(cat "$into.deb")" >> "$tmp/packages.txt"
}

# newest FILE...: raises $epoch to the newest mtime of FILE...
epoch=0
newest() {
	for f in "$@"; do
		m=$(stat -c %Y "$f")
		[ "$m" -gt "$epoch" ] && epoch=$m
	done
	return 0
}

# base ROOT: the directories and /etc files every variant has.
base() {
	rm -rf "$1"
	mkdir -p "$1"
	cd "$1"
	mkdir -p bin dev etc home root sbin tmp usr/bin usr/sbin var
	chmod 0700 root
	chmod 1777 tmp
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > etc/passwd
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > etc/group
	chmod 0644 etc/passwd etc/group
	cd - >/dev/null
}

# copyright ROOT FROM PACKAGE: the package's copyright file from the tree FROM.
copyright() {
	mkdir -p "$1/usr/share/doc/$3"
	cp "$2/usr/share/doc/$3/copyright" "$1/usr/share/doc/$3/copyright"
	chmod 0644 "$1/usr/share/doc/$3/copyright"
}

# applets ROOT LIST: one relative symlink per applet path of LIST (bin/sh -> busybox,
# usr/bin/awk -> ../../bin/busybox, linuxrc -> bin/busybox).
applets() {
	while IFS= read -r applet; do
		case $applet in
			bin/busybox) continue ;;
			bin/*/* | */../* | ../* | /*) die "unexpected applet path $applet" ;;
			bin/*) target=busybox ;;
			*/*/*) target=../../bin/busybox ;;
			*/*) target=../bin/busybox ;;
			?*) target=bin/busybox ;;
			*) die "unexpected applet path $applet" ;;
		esac
		mkdir -p "$1/$(dirname "$applet")"
		ln -s "$target" "$1/$applet"
	done < "$2"
	[ -L "$1/bin/sh" ] || die "no /bin/sh applet in the list"
}

mkdir -p "$build"

# static: the applet list comes from the binary that runs on this machine and serves every
# architecture (the package is built with one configuration; tests/integration/busybox.rs
# checks the arm64 binary's own list under qemu-user).
list=
for l in $layouts; do
	case $l in static:*) ;; *) continue ;; esac
	arch=${l#*:}; arch=${arch%%:*}; deb=${l##*:}
	fetch busybox-static "$deb" static "$arch"
	bin=$tmp/busybox-static-$deb/bin/busybox
	[ -f "$bin" ] || die "busybox-static:$deb has no /bin/busybox"
	newest "$bin"
	if [ -z "$list" ] && "$bin" --list-full > "$tmp/applets-static" 2>/dev/null; then
		list=$tmp/applets-static
	fi
done
[ -n "$list" ] || die "none of the busybox-static binaries runs on this machine (needed for the applet list)"
for l in $layouts; do
	case $l in static:*) ;; *) continue ;; esac
	arch=${l#*:}; arch=${arch%%:*}; deb=${l##*:}
	root=$build/static/$arch/rootfs
	base "$root"
	cp "$tmp/busybox-static-$deb/bin/busybox" "$root/bin/busybox"
	chmod 0755 "$root/bin/busybox"
	copyright "$root" "$tmp/busybox-static-$deb" busybox-static
	applets "$root" "$list"
done

# glibc: the dynamically linked busybox (another configuration: its own applet list, from
# the binary itself), its program interpreter and the libraries it needs (and theirs), all
# from libc6, at the paths Debian gives them (/lib/<triplet>/, /lib64/ld-linux-x86-64.so.2
# a symlink as in libc6).
for l in $layouts; do
	case $l in glibc:*) ;; *) continue ;; esac
	arch=${l#*:}; arch=${arch%%:*}; deb=${l##*:}
	[ "$deb" = "$native" ] || die "the glibc variant is built for this machine's architecture only ($deb is not $native)"
	fetch busybox "$deb" glibc "$arch"
	fetch libc6 "$deb" glibc "$arch"
	bb=$tmp/busybox-$deb
	libc=$tmp/libc6-$deb
	root=$build/glibc/$arch/rootfs
	base "$root"
	cp "$bb/bin/busybox" "$root/bin/busybox"
	chmod 0755 "$root/bin/busybox"
	newest "$bb/bin/busybox"
	"$bb/bin/busybox" --list-full > "$tmp/applets-glibc-$deb" || die "the dynamically linked busybox does not run here"
	applets "$root" "$tmp/applets-glibc-$deb"
	copyright "$root" "$bb" busybox
	copyright "$root" "$libc" libc6
	# The interpreter as libc6 ships it: a symlink (or file) at the path the binary names.
	interp=$(readelf -l "$bb/bin/busybox" | sed -n 's/.*Requesting program interpreter: \(.*\)]$/\1/p')
	[ -n "$interp" ] || die "busybox:$deb names no program interpreter"
	[ -e "$libc$interp" ] || [ -L "$libc$interp" ] || die "libc6:$deb has no $interp"
	mkdir -p "$root$(dirname "$interp")"
	cp -P "$libc$interp" "$root$interp"
	if [ -L "$libc$interp" ]; then
		real=$(readlink "$libc$interp")
		case $real in /*) ;; *) real=$(dirname "$interp")/$real ;; esac
		mkdir -p "$root$(dirname "$real")"
		cp "$libc$real" "$root$real"
		chmod "$(stat -c %a "$libc$real")" "$root$real"
		newest "$libc$real"
	else
		chmod "$(stat -c %a "$libc$interp")" "$root$interp"
		newest "$libc$interp"
	fi
	# The libraries busybox names, and those they name, found in libc6's library directory,
	# with the modes libc6 gives them.
	queue=$(readelf -d "$bb/bin/busybox" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')
	seen=
	while [ -n "$queue" ]; do
		next=
		for lib in $queue; do
			case " $seen " in *" $lib "*) continue ;; esac
			seen="$seen $lib"
			path=$(cd "$libc" && find lib usr/lib -name "$lib" -type f 2>/dev/null | head -n 1)
			[ -n "$path" ] || die "libc6:$deb has no $lib (busybox:$deb needs it)"
			if [ ! -e "$root/$path" ]; then
				mkdir -p "$root/$(dirname "$path")"
				cp "$libc/$path" "$root/$path"
				chmod "$(stat -c %a "$libc/$path")" "$root/$path"
				newest "$libc/$path"
			fi
			next="$next $(readelf -d "$libc/$path" | sed -n 's/.*(NEEDED).*\[\(.*\)\]$/\1/p')"
		done
		queue=$(echo $next)
	done
done

echo "$epoch" > "$build/SOURCE_DATE_EPOCH"
cp "$tmp/packages.txt" "$build/packages.txt"
cat "$build/packages.txt"
echo "static applets: $(wc -l < "$list"); SOURCE_DATE_EPOCH=$epoch"
