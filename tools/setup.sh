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

missing=()
for package in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)
	[ "$status" = "install ok installed" ] || missing+=("$package")
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

# The kernel source (checkpatch.pl, and the files the tests cite), unpacked once.
source_tar=$(ls /usr/src/linux-source-6.1.tar.* 2>/dev/null | head -n 1)
if [ -n "$source_tar" ] && [ ! -f build/linux-source-6.1/scripts/checkpatch.pl ]; then
	echo "setup: unpacking $source_tar into build/"
	mkdir -p build
	tar -xf "$source_tar" -C build
fi

# node_modules is current when npm's own record of it matches the lock file.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
	echo "setup: installing npm packages (npm ci)"
	npm ci --no-audit --no-fund --loglevel=error
fi
