"""What goes into the lab's guest image.

Two stages, each cached under its own key:

* base  -- debootstrap + kernel + OpenZFS compiled by dkms (the slow part, ~7 min).
  Key: hash of the BASE_* values below.
* image -- the base tree plus the static guest files in ``guest-files/`` and the
  unit settings in FINAL_UNITS, packed as a compressed qcow2 (~1 min).
  Key: base key + hash of FINAL_* values and every file under ``guest-files/``.

Per-instance things (ssh keys, host keys, known_hosts) are not in the image: they
are put on a small seed disk at boot (see seed.py).
"""

from __future__ import annotations

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"

# Installed by debootstrap (main only; contrib is enabled in the chroot's sources).
BASE_INCLUDE = [
    "systemd", "systemd-sysv", "udev", "dbus", "kmod", "iproute2", "procps",
    "openssh-server", "openssh-client", "ca-certificates",
    "python3", "python3-venv", "python3-pip",
    "zstd", "lz4", "mbuffer", "pv",
]

# Installed inside the chroot, in this order of steps.
KERNEL_PACKAGES = ["linux-image-amd64", "linux-headers-amd64", "initramfs-tools"]
ZFS_PACKAGES = ["zfs-dkms", "zfsutils-linux", "sanoid"]

# Where OpenZFS comes from (env ZFSREP_LAB_ZFS). "bookworm" is Debian 12's own 2.1.x, what
# a Debian user has; "backports" is bookworm-backports (2.3.x, contrib), what NixOS and newer
# distributions ship: features such as the snapshots_changed property need it.
ZFS_VARIANTS = {
    "bookworm": {"extra_sources": "", "apt_target": ""},
    "backports": {"extra_sources": "\ndeb {mirror} {suite}-backports main contrib",
                  "apt_target": "-t {suite}-backports "},
}
DEFAULT_ZFS = "bookworm"

# Modules the small initramfs needs to find and mount the root disk.
INITRAMFS_MODULES = ["virtio_pci", "virtio_blk", "ext4"]

# Kernel module directories nobody in the lab needs (saves ~200 MB raw).
DROP_MODULE_DIRS = [
    "kernel/drivers/gpu", "kernel/drivers/media", "kernel/drivers/net/wireless",
    "kernel/drivers/net/ethernet", "kernel/drivers/net/usb", "kernel/drivers/net/can",
    "kernel/drivers/usb", "kernel/drivers/hid", "kernel/drivers/mtd", "kernel/drivers/nfc",
    "kernel/drivers/mmc", "kernel/drivers/scsi", "kernel/drivers/hwmon", "kernel/drivers/input",
    "kernel/drivers/infiniband", "kernel/drivers/staging", "kernel/drivers/bluetooth",
    "kernel/drivers/iio", "kernel/drivers/isdn", "kernel/sound", "kernel/net/wireless",
    "kernel/net/bluetooth", "kernel/net/mac80211",
]

CHROOT_PREPARE = r"""
cat > /etc/apt/sources.list <<EOF
deb {mirror} {suite} main contrib
deb {mirror} {suite}-updates main contrib
deb {security} {suite}-security main contrib{extra_sources}
EOF
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod 755 /usr/sbin/policy-rc.d
printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
    > /etc/apt/apt.conf.d/90zfsrep-lab
mkdir -p /etc/initramfs-tools/conf.d
printf 'MODULES=list\nCOMPRESS=zstd\n' > /etc/initramfs-tools/conf.d/zfsrep-lab
printf '%s\n' {initramfs_modules} > /etc/initramfs-tools/modules
apt-get update -q
"""

CHROOT_KERNEL = r"""
apt-get install -y -q {kernel_packages}
ls /lib/modules
test "$(ls /lib/modules | wc -l)" = 1
"""

CHROOT_ZFS = r"""
apt-get install -y -q {apt_target}{zfs_packages}
kver=$(ls /lib/modules)
if ! ls /lib/modules/$kver/updates/dkms/zfs.ko* >/dev/null 2>&1; then
    zmod=$(dkms status | sed -n 's#^\(zfs/[^,:]*\).*#\1#p' | head -1)
    dkms install "$zmod" -k "$kver"
fi
ls -l /lib/modules/$kver/updates/dkms/
"""

# Pack the compiled modules into a tiny local package that provides zfs-dkms, then
# drop dkms, compilers and headers from the image.
CHROOT_STRIP = r"""
kver=$(ls /lib/modules)
zver=$(dpkg-query -W -f='${{Version}}' zfs-dkms)
pkg=/tmp/zfsrep-zfs-modules
rm -rf $pkg && mkdir -p $pkg/DEBIAN $pkg/lib/modules/$kver/extra/zfs
cp /lib/modules/$kver/updates/dkms/*.ko* $pkg/lib/modules/$kver/extra/zfs/
cat > $pkg/DEBIAN/control <<EOF
Package: zfsrep-zfs-modules
Version: $zver
Architecture: amd64
Maintainer: zfsrep lab <lab@zfsrep.invalid>
Provides: zfs-modules (= $zver), zfs-dkms (= $zver)
Description: OpenZFS modules built by dkms for the zfsrep lab kernel $kver
EOF
dpkg-deb --build $pkg /tmp/zfsrep-zfs-modules.deb
dpkg -i /tmp/zfsrep-zfs-modules.deb
dpkg --purge zfs-dkms
apt-get purge -y -q dkms $(dpkg-query -W -f='${{Package}}\n' 'linux-headers-*' 'linux-kbuild-*' 2>/dev/null)
apt-get autoremove --purge -y -q \
    -o APT::AutoRemove::RecommendsImportant=false -o APT::AutoRemove::SuggestsImportant=false
for d in {drop_dirs}; do rm -rf /lib/modules/$kver/$d; done
depmod "$kver"
modinfo -k "$kver" zfs | head -3
dpkg -s zfsutils-linux sanoid >/dev/null
apt-get clean
rm -rf /var/lib/apt/lists/* /usr/share/doc/* /usr/share/man/* /usr/share/info/* \
    /usr/share/locale/* /var/lib/dkms /var/cache/debconf/*-old /tmp/zfsrep-zfs-modules*
rm -f /etc/ssh/ssh_host_*
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
"""


def base_steps(zfs: str = DEFAULT_ZFS) -> list[tuple[str, str]]:
    """(timing name, shell script run inside the chroot) for the base stage."""
    variant = {k: v.format(mirror=MIRROR, suite=SUITE) for k, v in ZFS_VARIANTS[zfs].items()}
    fmt = dict(
        mirror=MIRROR, security=SECURITY_MIRROR, suite=SUITE, **variant,
        initramfs_modules=" ".join(INITRAMFS_MODULES),
        kernel_packages=" ".join(KERNEL_PACKAGES),
        zfs_packages=" ".join(ZFS_PACKAGES),
        drop_dirs=" ".join(DROP_MODULE_DIRS),
    )
    return [
        ("kernel", CHROOT_PREPARE.format(**fmt) + CHROOT_KERNEL.format(**fmt)),
        ("dkms", CHROOT_ZFS.format(**fmt)),
        ("strip", CHROOT_STRIP.format(**fmt)),
    ]


# ---- image stage -------------------------------------------------------------------

FINAL_UNITS_ENABLE = ["systemd-networkd.service", "zfsrep-seed.service", "ssh.service",
                      "zfsrep-zfs-load.service"]
FINAL_UNITS_DISABLE = [
    "zfs-import-cache.service", "zfs-import-scan.service", "zfs-mount.service",
    "zfs-share.service", "zfs-zed.service", "zfs-volume-wait.service",
    "zfs-import.target", "zfs.target", "zfs-volumes.target", "sanoid.timer",
]
FINAL_UNITS_MASK = [
    "systemd-networkd-wait-online.service", "zfs-zed.service", "sanoid.timer",
    "e2scrub_reap.service", "e2scrub_all.timer", "fstrim.timer",
    # not needed in the lab, and each costs seconds of boot under TCG
    "systemd-binfmt.service", "proc-sys-fs-binfmt_misc.automount",
    "proc-sys-fs-binfmt_misc.mount", "dev-hugepages.mount", "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount", "sys-fs-fuse-connections.mount", "sys-kernel-config.mount",
    "systemd-logind.service", "dbus.service", "dbus.socket",
]
# Free space left in the root filesystem for venvs, wheels and test files.
ROOT_FREE_MIB = 1536
