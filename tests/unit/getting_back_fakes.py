"""FakeZfs with the few extra commands the getting-data-back verbs use (`zfs get`, `zfs holds`,
`zfs rollback`, bookmark listing), and helpers to build a source and a target that share
snapshots by GUID, as send/receive would. In-process only: it proves nothing about real ZFS."""

from __future__ import annotations

import itertools
from contextlib import contextmanager
from dataclasses import dataclass, replace

from tests.unit.fake_zfs import FakeZfs, _options
from zfsrep.config.load import parse_config
from zfsrep.core.snapshot import Snapshot
from zfsrep.targets.access import Session

CONFIG = """
state_dir = "{state}"
lock_dir = "{state}/lock"
[[datasets]]
name = "tank/home"
[[datasets]]
name = "tank/vm"
recursive = true
[targets.offsite]
host = "backup.example.org"
dataset = "backup/h"
"""


def config(tmp_path, text: str = CONFIG):
    return parse_config(text.format(state=tmp_path), path=str(tmp_path / "config.toml"))


@dataclass
class MoreZfs(FakeZfs):
    def _get(self, args: list[str]) -> tuple[int, str, str]:
        opts, rest = _options(args, {"-o"})
        props, *names = rest
        lines, errors = [], []
        snaps = {s.full_name: s for s in self.snaps}
        for name in names:
            if "@" in name and name not in snaps:
                errors.append(f"cannot open '{name}': dataset does not exist\n")
                continue
            for prop in props.split(","):
                if "@" in name:
                    value = (",".join(self.clones.get(name, [])) if prop == "clones"
                             else str(snaps[name].guid) if prop == "guid" else "-")
                else:
                    value = self.datasets.get(name, {}).get(prop, "-")
                lines.append(f"{name}\t{prop}\t{value}")
        return int(bool(errors)), "".join(line + "\n" for line in lines), "".join(errors)

    def _holds(self, args: list[str]) -> tuple[int, str, str]:
        _, names = _options(args, set())
        lines = [f"{n}\t{tag}\tSun Nov 22 04:00 2026" for n in names for tag in sorted(self.tags.get(n, ()))]
        return 0, "".join(line + "\n" for line in lines), ""

    def _rollback(self, args: list[str]) -> tuple[int, str, str]:
        _, (full,) = _options(args, set())
        ds, _, name = full.partition("@")
        to = next(s for s in self.snaps if s.dataset == ds and s.name == name)
        newer = [s for s in self.snaps if s.dataset == ds and s.createtxg > to.createtxg]
        if newer and "-r" not in args:
            return 1, "", f"cannot rollback to '{full}': more recent snapshots or bookmarks exist\n"
        if any(s.userrefs for s in newer):
            return 1, "", f"cannot destroy '{newer[0].full_name}': dataset is busy\n"
        self.snaps = [s for s in self.snaps if s not in newer]
        return 0, "", ""

    def __post_init__(self) -> None:
        self.clones: dict[str, list[str]] = {}



def target_zfs(*datasets: str) -> MoreZfs:
    """A fake for the target host: its own GUIDs never collide with the source fake's."""
    fake = MoreZfs().add(*datasets)
    fake._guid = itertools.count(20_000_000_000_000_000)
    return fake


def copy_to(target: MoreZfs, snap: Snapshot, dataset: str) -> Snapshot:
    """``snap`` as received into ``dataset`` on ``target``: same GUID, the target's own txg."""
    copy = replace(snap, dataset=dataset, createtxg=next(target._txg))
    target.snaps.append(copy)
    target.changed[dataset] = target.clock  # a receive sets snapshots_changed
    return copy


def connect_to(fake: MoreZfs):
    @contextmanager
    def connect(target):
        yield Session(target, fake, ["connected"])
    return connect
