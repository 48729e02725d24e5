"""The stream tools of the data path, as argv lists: pure data, shared by `zfsrep.pipeline`
(which runs them) and `zfsrep.core.serve_policy` (which accepts exactly these on a target)."""

from __future__ import annotations

COMPRESSORS: dict[str, tuple[list[str], list[str]]] = {
    # name: (compress argv on the sender, decompress argv on the receiver)
    "zstd": (["zstd", "-q", "-c", "-3", "-T0"], ["zstd", "-q", "-d", "-c"]),
    "lz4": (["lz4", "-q", "-c"], ["lz4", "-q", "-d", "-c"]),
}


def mbuffer_argv(size: str, rate: str | None = None) -> list[str]:
    """mbuffer holding ``size`` bytes (128 KiB blocks), at most ``rate`` bytes/s if given; the
    same shape on the sender and (without a rate) on the receiver."""
    argv = ["mbuffer", "-q", "-s", "128k", "-m", size]
    return [*argv, "-r", rate] if rate else argv
