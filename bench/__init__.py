"""Benchmarks of zfsrep against the raw `zfs send | ssh | zfs recv` pipe and its peers
(syncoid, zfs-autobackup, zfs-replicate, sanoid), run in the two-VM lab (tests/lab).

`python -m bench` (or `make bench`) runs every scenario and writes bench/RESULTS.md.
Not part of CI: it takes minutes (--quick) to an hour (default sizes) under TCG.
"""
