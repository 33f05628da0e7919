#!/usr/bin/env bash
# Install the Debian packages nqrust needs that are missing. Idempotent.
# Usage: scripts/deps.sh [build|run|test]...   (default: build run)
set -euo pipefail

build_pkgs=(gcc make meson ninja-build pkg-config libmicrohttpd-dev libjansson-dev
	libcurl4-openssl-dev libsmbclient-dev libfuse3-dev libsodium-dev libpq-dev
	libsqlite3-dev libgnutls28-dev)
run_pkgs=(fuse3 cifs-utils util-linux curl qemu-system-x86 busybox-static xz-utils
	e2fsprogs)
test_pkgs=(libcmocka-dev samba samba-vfs-modules smbclient strace fio python3 python3-pytest
	python3-prometheus-client qemu-utils valgrind xfsprogs btrfs-progs
	postgresql clang libclang-rt-14-dev clang-format chromium nodejs)

want=()
for group in "${@:-build run}"; do
	for g in $group; do
		case "$g" in
		build) want+=("${build_pkgs[@]}") ;;
		run) want+=("${run_pkgs[@]}") ;;
		test) want+=("${test_pkgs[@]}") ;;
		*) echo "deps.sh: unknown group '$g' (build, run, test)" >&2; exit 2 ;;
		esac
	done
done

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
# npm for the browser tests and for the UI's third-party files (web/
# package.json, `npm ci` at build time): Debian's package, unless an npm is
# already on PATH (a NodeSource nodejs bundles its own and conflicts with
# Debian's).
for g in "${@:-build run}"; do
	for w in $g; do
		if { [ "$w" = test ] || [ "$w" = build ]; } && ! command -v npm >/dev/null 2>&1; then
			missing+=(npm)
		fi
	done
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages: ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
