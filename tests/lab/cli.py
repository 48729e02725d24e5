"""`python -m tests.lab up|down|status|ssh-config|install [--peers]|reset|build`."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from .paths import LabError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m tests.lab",
                                 description="two-VM OpenZFS lab for zfsrep's tests")
    ap.add_argument("--zfs", metavar="VARIANT",
                    help="OpenZFS of the image: bookworm (Debian 12's 2.1, the default) or "
                         "backports (2.3); a non-default variant runs as instance <instance>-VARIANT")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("up", help="build the image if needed, boot source+target, create pools")
    sub.add_parser("down", help="stop this instance's VMs")
    sub.add_parser("status", help="show each VM's state")
    sub.add_parser("ssh-config", help="print the OpenSSH config path (last line)")
    inst = sub.add_parser("install", help="install the checkout into /opt/zfsrep on both VMs")
    inst.add_argument("--peers", action="store_true",
                      help="also install zfs-autobackup and zfs-replicate (benchmark peers)")
    sub.add_parser("reset", help="empty both pools")
    build = sub.add_parser("build", help="only build (or find) the cached image")
    build.add_argument("--rebuild", action="store_true")
    args = ap.parse_args(argv)

    from .lab import Lab
    from .paths import variant_instance

    try:
        lab = Lab(variant_instance(args.zfs), zfs=args.zfs)
        if args.cmd == "up":
            t = time.monotonic()
            info = lab.up()
            if info.get("already_running"):
                print(f"lab {lab.instance}: already running, both VMs answer")
            else:
                print(f"lab {lab.instance}: up in {time.monotonic() - t:.1f} s "
                      f"(image {info['image_s']} s, {info['mode']} in {info['boot_s']} s, {info['accel']})")
            print(lab.ssh_config)
        elif args.cmd == "down":
            stopped = lab.down()
            print(f"lab {lab.instance}: stopped {', '.join(stopped) or 'nothing (not running)'}")
        elif args.cmd == "status":
            for vm, state in lab.status().items():
                print(f"{vm}: {state}")
        elif args.cmd == "ssh-config":
            if not lab.ssh_config.exists():
                raise LabError(f"no ssh config yet for instance {lab.instance}: run `up` first")
            print(lab.ssh_config)
        elif args.cmd == "install":
            if not all(lab.running().values()):
                raise LabError(f"lab {lab.instance} is not running: run `up` first")
            info = lab.install(peers=args.peers)
            print(f"lab {lab.instance}: installed {info['wheel']} in {info['install_s']} s")
        elif args.cmd == "reset":
            print(f"lab {lab.instance}: pools reset in {lab.reset():.1f} s")
        elif args.cmd == "build":
            from .image import ensure_image
            print(ensure_image(rebuild=args.rebuild, zfs=args.zfs))
    except (LabError, subprocess.SubprocessError, OSError) as exc:
        print(f"lab: ERROR: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0
