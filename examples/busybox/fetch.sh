#!/bin/sh
# fetch.sh - assembles the busybox example's root filesystems from Debian's busybox-static.
#
#   examples/busybox/fetch.sh [DIR]      (DIR: where ocipack.toml is; default: beside this script)
#
# For each architecture it downloads busybox-static with apt (apt checks the package against
# the SHA-256 in the signed Packages index), extracts /bin/busybox and the copyright file with
# dpkg-deb (no maintainer script runs, nothing is installed), and builds DIR/build/ARCH/rootfs:
# /bin/busybox, one relative symlink per applet (/bin/sh among them), /etc/passwd and
# /etc/group, /root 0700, /tmp 1777, empty /dev /home /var. It writes DIR/build/SOURCE_DATE_EPOCH
# (the newest busybox binary's mtime, the package build time) and DIR/build/packages.txt
# (architecture, version and SHA-256 of each .deb). Then:
#
#   SOURCE_DATE_EPOCH=$(cat DIR/build/SOURCE_DATE_EPOCH) ocipack build DIR
#
# Needs apt-get and dpkg-deb; a foreign architecture must be enabled once, as root:
#   dpkg --add-architecture arm64 && apt-get update
# BUSYBOX_VERSION=1:1.35.0-4+deb12u1+b1 picks an exact version (one the mirror still has).
set -eu
umask 022
export LC_ALL=C

dir=${1:-$(dirname "$0")}
dir=$(cd "$dir" && pwd)
build=$dir/build
# bashbrew architecture : Debian architecture
arches="amd64:amd64 arm64v8:arm64"

die() { echo "fetch.sh: $*" >&2; exit 1; }
command -v apt-get >/dev/null || die "apt-get is not installed (a Debian or Ubuntu system is needed)"
command -v dpkg-deb >/dev/null || die "dpkg-deb is not installed"
native=$(dpkg --print-architecture)
for pair in $arches; do
	deb=${pair#*:}
	if [ "$deb" != "$native" ] && ! dpkg --print-foreign-architectures | grep -qx "$deb"; then
		die "apt does not know the $deb architecture: run 'dpkg --add-architecture $deb && apt-get update' as root"
	fi
done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# apt downloads as the unprivileged _apt user when it can write the directory.
if [ "$(id -u)" = 0 ] && id _apt >/dev/null 2>&1; then chown _apt "$tmp"; fi

mkdir -p "$build"
: > "$tmp/packages.txt"
epoch=0
list=
for pair in $arches; do
	arch=${pair%%:*}
	deb=${pair#*:}
	want=busybox-static:$deb${BUSYBOX_VERSION:+=$BUSYBOX_VERSION}
	(cd "$tmp" && apt-get download -q=2 "$want") || die "apt-get download $want failed"
	file=$(ls "$tmp"/busybox-static_*_"$deb".deb)
	version=$(dpkg-deb -f "$file" Version)
	echo "$arch busybox-static $version $deb sha256:$(sha256sum "$file" | cut -d' ' -f1)" >> "$tmp/packages.txt"
	mkdir "$tmp/$deb"
	dpkg-deb -x "$file" "$tmp/$deb"
	bin=$tmp/$deb/bin/busybox
	[ -f "$bin" ] || die "$file has no /bin/busybox"
	mtime=$(stat -c %Y "$bin")
	[ "$mtime" -gt "$epoch" ] && epoch=$mtime
	# The applet list, from the binary that runs here. It is the same on every
	# architecture (the package is built with one configuration); tests/integration/busybox.rs checks
	# the arm64 binary's own list under qemu-user.
	if [ -z "$list" ] && "$bin" --list-full > "$tmp/applets" 2>/dev/null; then
		list=$tmp/applets
	fi
done
[ -n "$list" ] || die "none of the busybox binaries runs on this machine (needed for the applet list)"

for pair in $arches; do
	arch=${pair%%:*}
	deb=${pair#*:}
	root=$build/$arch/rootfs
	rm -rf "$root"
	mkdir -p "$root"
	cd "$root"
	mkdir -p bin dev etc home root sbin tmp usr/bin usr/sbin var usr/share/doc/busybox-static
	chmod 0700 root
	chmod 1777 tmp
	cp "$tmp/$deb/bin/busybox" bin/busybox
	chmod 0755 bin/busybox
	cp "$tmp/$deb/usr/share/doc/busybox-static/copyright" usr/share/doc/busybox-static/copyright
	chmod 0644 usr/share/doc/busybox-static/copyright
	printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' > etc/passwd
	printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' > etc/group
	chmod 0644 etc/passwd etc/group
	# One relative symlink per applet: bin/sh -> busybox, usr/bin/awk -> ../../bin/busybox,
	# linuxrc -> bin/busybox.
	while IFS= read -r applet; do
		case $applet in
			bin/busybox) continue ;;
			bin/*/* | */../* | ../* | /*) die "unexpected applet path $applet" ;;
			bin/*) target=busybox ;;
			*/*/*) target=../../bin/busybox ;;
			*/*) target=../bin/busybox ;;
			?*) target=bin/busybox ;;   # /linuxrc
			*) die "unexpected applet path $applet" ;;
		esac
		mkdir -p "$(dirname "$applet")"
		ln -s "$target" "$applet"
	done < "$list"
	[ -L bin/sh ] || die "no /bin/sh applet in the list"
	cd - >/dev/null
done

echo "$epoch" > "$build/SOURCE_DATE_EPOCH"
cp "$tmp/packages.txt" "$build/packages.txt"
cat "$build/packages.txt"
echo "applets: $(wc -l < "$list"); SOURCE_DATE_EPOCH=$epoch"
