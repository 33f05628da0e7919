#!/usr/bin/env bash
# Build the small bootable demo image into DIR (cached: nothing is done when
# the three files exist):
#   DIR/demo.ext4     ext4 rootfs made with mke2fs -d from busybox-static;
#                     its /sbin/init reports whether /marker exists, appends
#                     to it, syncs and powers off
#   DIR/demo.vmlinuz  Debian's kernel, from `apt-get download` + `dpkg-deb -x`
#                     (never installed on this host)
#   DIR/demo.initrd   busybox initramfs loading the virtio/ext4 modules and
#                     switching to /dev/vda
# Usage: scripts/demo-image.sh DIR
# Exit 3 when the kernel package cannot be fetched (no apt, no archive).
set -euo pipefail

out=${1:?usage: demo-image.sh DIR}
mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ -s "$out/demo.ext4" ] && [ -s "$out/demo.vmlinuz" ] && [ -s "$out/demo.initrd" ]; then
	exit 0
fi

busybox=/bin/busybox
if ! "$busybox" --list 2>/dev/null | grep -qx switch_root ||
	! { LC_ALL=C ldd "$busybox" 2>&1 || true; } | grep -q "not a dynamic"; then
	echo "demo-image.sh: $busybox must be busybox-static (scripts/deps.sh test)" >&2
	exit 3
fi
command -v apt-get >/dev/null || { echo "demo-image.sh: apt-get not found" >&2; exit 3; }

work=$(mktemp -d /tmp/nqrust-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
cd "$work"

# The versioned kernel package the linux-image-amd64 metapackage points at.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1)
if [ -z "$pkg" ]; then
	echo "demo-image.sh: apt knows no linux-image-amd64 (run apt-get update)" >&2
	exit 3
fi
if ! apt-get download -q "$pkg" >/dev/null 2>apt.err; then
	echo "demo-image.sh: cannot download $pkg: $(tail -n1 apt.err)" >&2
	exit 3
fi
dpkg-deb -x ./"$pkg"_*.deb kernel
ver=$(ls kernel/lib/modules | head -n1)
[ -s "kernel/boot/vmlinuz-$ver" ] || { echo "demo-image.sh: no vmlinuz in $pkg" >&2; exit 1; }

# initramfs: busybox, the modules (TESTING.md order), /init.
mods="virtio_ring virtio virtio_mmio virtio_pci_modern_dev virtio_pci_legacy_dev
	virtio_pci virtio_blk crc32c_generic jbd2 mbcache crc16 ext4"
mkdir -p initramfs/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,newroot,lib/modules}
cp "$busybox" initramfs/bin/busybox
order=""
for m in $mods; do
	f=$(find "kernel/lib/modules/$ver" -name "$m.ko" -o -name "$m.ko.xz" | head -n1)
	[ -n "$f" ] || continue # built into this kernel
	case "$f" in
	*.xz) xz -dc "$f" >"initramfs/lib/modules/$m.ko" ;;
	*) cp "$f" "initramfs/lib/modules/$m.ko" ;;
	esac
	order="$order $m"
done
cat >initramfs/init <<INIT
#!/bin/busybox sh
/bin/busybox --install -s
mount -t devtmpfs dev /dev
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
for m in$order; do insmod /lib/modules/\$m.ko; done
i=0
while [ ! -b /dev/vda ] && [ \$i -lt 100 ]; do sleep 0.1; i=\$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "NQRUST-NO-ROOTFS"; poweroff -f; }
mount --move /dev /newroot/dev
umount /proc /sys
exec switch_root /newroot /sbin/init
INIT
chmod 755 initramfs/init
(cd initramfs && find . | "$busybox" cpio -o -H newc 2>/dev/null) | gzip -9 >initrd

# rootfs: busybox and an init that proves persistence.
mkdir -p rootfs/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,tmp,etc}
cp "$busybox" rootfs/bin/busybox
cat >rootfs/sbin/init <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s
mount -t proc proc /proc
if [ -f /marker ]; then
	echo "NQRUST-MARKER-FOUND $(wc -l < /marker)"
else
	echo "NQRUST-MARKER-ABSENT"
fi
echo "booted" >> /marker
sync
echo "NQRUST-POWEROFF"
poweroff -f
INIT
chmod 755 rootfs/sbin/init
mke2fs -q -t ext4 -d rootfs -L nqrust-demo -F demo.ext4 64M

for f in demo.ext4 initrd; do [ -s "$f" ]; done
cp "kernel/boot/vmlinuz-$ver" "$out/.demo.vmlinuz.tmp"
cp initrd "$out/.demo.initrd.tmp"
cp --sparse=always demo.ext4 "$out/.demo.ext4.tmp"
mv "$out/.demo.vmlinuz.tmp" "$out/demo.vmlinuz"
mv "$out/.demo.initrd.tmp" "$out/demo.initrd"
mv "$out/.demo.ext4.tmp" "$out/demo.ext4"
echo "demo-image.sh: built $out/demo.{ext4,vmlinuz,initrd} (kernel $ver)" >&2
