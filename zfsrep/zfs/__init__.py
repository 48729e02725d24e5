"""The zfs layer: pure argv builders (`argv`), output parsers (`parse`), and `ZfsClient`, which
runs them over a `zfsrep.execute.Runner` (local or through ssh)."""

from zfsrep.zfs.client import DestroyError, ZfsClient, by_pool
from zfsrep.zfs.parse import ZfsOutputError

__all__ = ["DestroyError", "ZfsClient", "ZfsOutputError", "by_pool"]
