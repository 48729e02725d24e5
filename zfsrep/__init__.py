"""zfsrep: ZFS snapshots, retention and safe incremental replication over SSH."""

__version__ = "0.1.0"
