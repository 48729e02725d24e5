# The services' `path` (NixOS puts each entry's bin/ and sbin/ on PATH, in this order).
# The zfs CLI must match the running kernel module: after a switch that upgrades ZFS, the new
# generation's zfs would talk to the old module until reboot. So the booted system's tools come
# first (/run/booted-system/sw/bin, as nixpkgs' syncoid module does), this generation's zfs after
# them (for a system whose booted profile lacks zfs), then the stream tools zfsrep runs.
{ pkgs, zfs }:
[
  "/run/booted-system/sw"
  zfs
  pkgs.openssh
  pkgs.zstd
  pkgs.lz4
  pkgs.mbuffer
  pkgs.pv
]
