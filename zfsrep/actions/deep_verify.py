"""`verify --deep`, the I/O part: read one snapshot's files on a host (local or over ssh) through
``<mountpoint>/.zfs/snapshot/<name>``, or, where the dataset is not mounted (a target receives
with ``-u`` and ``canmount=noauto``), through a temporary read-only mount of the snapshot
itself (`mount -t zfs -o ro ds@snap DIR`), which changes nothing on the dataset.

The listing and checksums are computed on each host by fixed shell programs
(`zfsrep.core.deep_compare`); only file names, sizes and digests come back."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from zfsrep.core import deep_compare as dc
from zfsrep.errors import ZfsrepError
from zfsrep.execute import Runner
from zfsrep.zfs import ZfsClient

PROPS = ("type", "mounted", "mountpoint", "keystatus")


class DeepSkip(ZfsrepError):
    """This snapshot cannot be read on this host (a volume, or an encryption key not loaded)."""


@dataclass(frozen=True)
class Reader:
    runner: Runner
    where: str  # "source" or "target NAME" for messages
    dataset: str
    snapshot: str

    @contextmanager
    def directory(self) -> Iterator[str]:
        props = ZfsClient(self.runner).get(PROPS, [self.dataset]).get(self.dataset, {})
        full = f"{self.dataset}@{self.snapshot}"
        if props.get("type") == "volume":
            raise DeepSkip(f"{self.dataset} is a volume; --deep reads files of filesystems only")
        if props.get("keystatus") == "unavailable":
            raise DeepSkip(f"{self.dataset} on the {self.where} is encrypted and its key is not loaded there "
                           "(a raw replica); --deep needs `zfs load-key` on that host")
        mountpoint = props.get("mountpoint", "")
        if props.get("mounted") == "yes" and mountpoint.startswith("/"):
            yield f"{mountpoint.rstrip('/')}/.zfs/snapshot/{self.snapshot}"
            return
        tmp = self.runner.run(["mktemp", "-d", "-t", "zfsrep-verify.XXXXXXXX"]).stdout.strip()
        try:
            mounted = self.runner.run(["mount", "-t", "zfs", "-o", "ro", full, tmp], check=False)
            if not mounted.ok:
                raise ZfsrepError(f"cannot mount {full} read-only on the {self.where} ({self.runner.host or 'local'}): "
                                  f"{mounted.stderr.strip().splitlines()[-1] if mounted.stderr.strip() else 'failed'}; "
                                  "--deep needs root (or the mount permission) there")
            try:
                yield tmp
            finally:
                self.runner.run(["umount", tmp], check=False)
        finally:
            self.runner.run(["rmdir", tmp], check=False)

    def manifest(self, path: str) -> dict[str, dc.Entry]:
        result = self.runner.run(["sh", "-c", dc.MANIFEST_SCRIPT, "sh", path], check=False)
        if not result.ok:
            last = result.stderr.strip().splitlines()[-1] if result.stderr.strip() else f"exit {result.returncode}"
            raise ZfsrepError(f"cannot list the files of {self.dataset}@{self.snapshot} on the {self.where}: {last}")
        return dc.parse_manifest(result.stdout)

    def checksums(self, path: str, files: Sequence[str] | None) -> dict[str, str]:
        if files is None:
            result = self.runner.run(["sh", "-c", dc.CHECKSUM_ALL_SCRIPT, "sh", path], check=False)
        else:
            result = self.runner.run(["sh", "-c", dc.CHECKSUM_SCRIPT, "sh", path], input=dc.stdin_for(files),
                                     check=False)
        return dc.parse_checksums(result.stdout)  # unreadable files are simply absent


def deep_check(source: Reader, target: Reader, *, sample: int, seed: int) -> dc.DeepResult:
    """Compare every entry's metadata and ``sample`` files' sha256 (0: every file)."""
    with source.directory() as src_dir, target.directory() as dst_dir:
        src_manifest = source.manifest(src_dir)
        dst_manifest = target.manifest(dst_dir)
        files = dc.choose_sample(src_manifest, sample, seed=seed)
        every = sample <= 0
        src_sums = source.checksums(src_dir, None if every else files)
        dst_sums = target.checksums(dst_dir, None if every else files)
    return dc.compare(src_manifest, dst_manifest, src_sums, dst_sums, files)
