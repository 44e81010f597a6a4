#!/usr/bin/env bash
# make setup: installs what mmapkit needs from Debian and npm. Idempotent, and
# silent when nothing is missing, so that `make run` and `make test` can call
# it every time.
set -euo pipefail
cd "$(dirname "$0")/.."

# The guest kernel with its headers; QEMU; what the initramfs is made of; the
# compilers for the module and the addon; the kernel source for checkpatch,
# for sparse and for reading the mmap path.
PACKAGES=(
	qemu-system-x86 linux-image-amd64 linux-headers-amd64 linux-source-6.1
	busybox-static cpio kmod xz-utils zstd
	build-essential python3 sparse
)

# One dpkg-query for all of them: `make run` pays this check every time.
installed=$'\n'$(dpkg-query -W -f='${Package} ${Status}\n' "${PACKAGES[@]}" 2>/dev/null || true)$'\n'
missing=()
for package in "${PACKAGES[@]}"; do
	[[ $installed == *$'\n'"$package install ok installed"$'\n'* ]] || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]} (Debian packages; this takes a few minutes the first time)"
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: error: installing packages needs root (run make setup as root)" >&2
		exit 3
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The second guest kernel series, 6.12, comes from Debian: bookworm-backports
# (added here) and, since 2025, bookworm-security also carry linux-6.12.
# Backports is pinned to priority 1, so that nothing on this machine is ever
# upgraded from it (linux-image-amd64 and linux-headers-amd64 stay on 6.1):
# only packages named explicitly below, which exist nowhere else, come from it.
BACKPORTS_SOURCE=/etc/apt/sources.list.d/mmapkit-bookworm-backports.sources
BACKPORTS_PIN=/etc/apt/preferences.d/mmapkit-bookworm-backports
backports_source='# mmapkit (tools/setup.sh): the 6.12 guest kernel.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg'
backports_pin='# mmapkit (tools/setup.sh): nothing is installed or upgraded from
# bookworm-backports unless it is named on the command line (the 6.12 guest
# kernel and its headers, which no other suite has under those names).
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 1'

# write_config FILE CONTENT: writes FILE when it does not hold CONTENT already.
write_config() {
	[ -f "$1" ] && [ "$(cat "$1")" = "$2" ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: error: writing $1 needs root (run make setup as root)" >&2
		exit 3
	fi
	echo "setup: writing $1"
	printf '%s\n' "$2" >"$1"
}
write_config "$BACKPORTS_SOURCE" "$backports_source"
write_config "$BACKPORTS_PIN" "$backports_pin"

# Is a 6.12 image with its exact headers installed? (amd64 flavour only:
# -cloud lacks the 9p and virtio modules the guest needs, -rt is PREEMPT_RT.)
installed_612() {
	local package release
	for package in $(dpkg-query -W -f='${Package}\n' 'linux-image-6.12.*-amd64' 'linux-image-6.12.*-amd64-unsigned' 2>/dev/null); do
		release=${package#linux-image-}
		release=${release%-unsigned}
		[[ $release =~ ^6\.12\.[0-9]+\+deb[0-9]+-amd64$ ]] || continue
		[ "$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null)" = "install ok installed" ] || continue
		[ "$(dpkg-query -W -f='${Status}' "linux-headers-$release" 2>/dev/null)" = "install ok installed" ] && return 0
	done
	return 1
}
if ! installed_612; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "setup: error: installing the 6.12 guest kernel needs root (run make setup as root)" >&2
		exit 3
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# The newest versioned 6.12 amd64 image any configured suite offers
	# (bookworm-backports or bookworm-security), by its explicit name.
	release=$(apt-cache pkgnames linux-image-6.12. |
		sed -nE 's/^linux-image-(6\.12\.[0-9]+\+deb[0-9]+-amd64)$/\1/p' | sort -V | tail -n 1)
	if [ -z "$release" ]; then
		echo "setup: error: no linux-image-6.12.*-amd64 in the apt index (is $BACKPORTS_SOURCE reachable?)" >&2
		exit 3
	fi
	echo "setup: installing linux-image-$release and linux-headers-$release (the 6.12 guest kernel)"
	apt-get install -y -qq --no-install-recommends "linux-image-$release" "linux-headers-$release" >/dev/null
fi

# The kernel source (checkpatch.pl, and the files the tests cite), unpacked once.
source_tar=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1)
if [ -n "$source_tar" ] && [ ! -f build/linux-source-6.1/scripts/checkpatch.pl ]; then
	echo "setup: unpacking $source_tar into build/"
	mkdir -p build
	tar -xf "$source_tar" -C build
fi

# QEMU drops root and runs as this system user (tools/qemu/qemu-user.ts
# QEMU_USER): no home, no shell, no files but the run directories' out/.
# Only root needs it: anyone else's QEMU runs as that unprivileged user.
QEMU_USER=mmapkit-qemu
if [ "$(id -u)" -eq 0 ] && ! getent passwd "$QEMU_USER" >/dev/null; then
	echo "setup: creating the system user $QEMU_USER (QEMU runs as it)"
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$QEMU_USER"
fi

# node_modules is current when npm's own record of it matches the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "setup: installing npm packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
fi
