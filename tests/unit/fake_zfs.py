"""An in-memory stand-in for `zfs` behind a Runner, for fast in-process tests of plans, the
client and the CLI. It mimics the command surface zfsrep uses (list, snapshot, destroy, hold,
release) including ZFS's rules that matter here: one new snapshot per dataset per atomic
`zfs snapshot`, one pool per invocation, all-or-nothing batch destroy, holds block destroy.
It proves nothing about real ZFS: the lab tests do that."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from zfsrep.core.snapshot import Snapshot, is_descendant, parent_of, pool_of
from zfsrep.errors import CommandError
from zfsrep.execute import CommandResult, Runner


@dataclass
class FakeZfs(Runner):
    datasets: dict[str, dict[str, str]] = field(default_factory=dict)
    snaps: list[Snapshot] = field(default_factory=list)
    clock: int = 1_767_225_600
    commands: list[list[str]] = field(default_factory=list)
    fail_on: dict[str, str] = field(default_factory=dict)  # argv word -> stderr to fail with
    # OpenZFS >= 2.2's `snapshots_changed` (per dataset: `clock` when a snapshot of it was last
    # created or destroyed); False answers like 2.1 ("invalid property").
    snapshots_changed: bool = False
    changed: dict[str, int] = field(default_factory=dict)
    tags: dict[str, set[str]] = field(default_factory=dict)  # ds@snap -> hold tags
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)  # ds#name -> (guid, createtxg)
    _txg: itertools.count = field(default_factory=lambda: itertools.count(100))
    _guid: itertools.count = field(default_factory=lambda: itertools.count(10_000_000_000_000_000))

    def add(self, *names: str, used: int = 0) -> FakeZfs:
        for name in names:
            self.datasets[name] = {"used": str(used), "type": "filesystem",
                                   "guid": str(next(self._guid))}
        return self

    def add_snapshot(self, full: str, *, used: int = 0, userrefs: int = 0, creation: int | None = None) -> Snapshot:
        ds, _, name = full.partition("@")
        snap = Snapshot(ds, name, next(self._guid), next(self._txg),
                        self.clock if creation is None else creation, used, userrefs)
        self.snaps.append(snap)
        self.changed[ds] = self.clock
        self.datasets.get(ds, {})["written"] = "0"
        return snap

    def write(self, dataset: str, n: int) -> None:
        """``n`` bytes written to ``dataset`` (its ``written`` property; a snapshot resets it)."""
        self.datasets[dataset]["written"] = str(int(self.datasets[dataset].get("written", "0")) + n)

    def names(self, dataset: str) -> list[str]:
        return [s.name for s in self.snaps if s.dataset == dataset]

    def zfs_commands(self, verb: str) -> list[list[str]]:
        return [c for c in self.commands if c[:2] == ["zfs", verb]]

    # -- Runner ---------------------------------------------------------------------------

    def run(self, argv: Sequence[str], *, input: str | None = None, check: bool = True,
            timeout: float | None = None) -> CommandResult:
        argv = list(argv)
        self.calls += 1
        self.commands.append(argv)
        rc, out, err = 0, "", ""
        for word, message in self.fail_on.items():
            if word in argv:
                rc, err = 1, message
                break
        else:
            rc, out, err = self._dispatch(argv)
        result = CommandResult(tuple(argv), rc, out, err)
        if check and rc != 0:
            raise CommandError(argv, rc, err, host=self.host)
        return result

    def _dispatch(self, argv: list[str]) -> tuple[int, str, str]:
        if argv[:3] == ["sh", "-c", 'date +%s && exec "$@"']:  # argv.list_changed
            rc, out, err = self._dispatch(argv[4:])
            return rc, f"{self.clock}\n{out}", err
        return getattr(self, "_" + argv[1])(argv[2:])

    def _list(self, args: list[str]) -> tuple[int, str, str]:
        opts, roots = _options(args, {"-t", "-o", "-s", "-d"})
        columns = opts["-o"].split(",")
        if "snapshots_changed" in columns and not self.snapshots_changed:
            return 2, "", "bad property list: invalid property 'snapshots_changed'\nusage: ...\n"
        rc, lines, errs = 0, [], []
        for root in roots:
            if root not in self.datasets:
                rc = 1
                errs.append(f"cannot open '{root}': dataset does not exist")
                continue
            recursive = "-r" in opts

            def within(d: str, root: str = root, recursive: bool = recursive) -> bool:
                return is_descendant(d, root) if recursive else d == root
            types = opts["-t"].split(",")
            if {"filesystem", "volume"} & set(types):
                for d, props in self.datasets.items():
                    # `-d 1` (only used with snapshots) also lists the root's children
                    if within(d) or ("-d" in opts and parent_of(d) == root):
                        values = {"type": "filesystem", **props, "name": d,
                                  "snapshots_changed": self.changed.get(d, "-")}
                        lines.append("\t".join(str(values.get(c, "-")) for c in columns))
            if "snapshot" in types:
                for s in sorted((s for s in self.snaps if within(s.dataset)), key=lambda s: s.createtxg):
                    values = {"name": s.full_name, "guid": s.guid, "createtxg": s.createtxg,
                              "creation": s.creation, "used": s.used, "userrefs": s.userrefs,
                              "type": "snapshot"}
                    lines.append("\t".join(str(values.get(c, "-")) for c in columns))
            if "bookmark" in types:
                for full, (guid, txg) in sorted(self.marks.items(), key=lambda m: m[1][1]):
                    if within(full.partition("#")[0]) or (
                            "-d" in opts and full.partition("#")[0] == root):
                        values = {"name": full, "guid": guid, "createtxg": txg, "type": "bookmark"}
                        lines.append("\t".join(str(values.get(c, "-")) for c in columns))
        return rc, "".join(line + "\n" for line in lines), "".join(e + "\n" for e in errs)

    def _bookmark(self, args: list[str]) -> tuple[int, str, str]:
        snap, mark = args
        found = next((s for s in self.snaps if s.full_name == snap), None)
        if found is None:
            return 1, "", f"cannot create bookmark '{mark}': dataset does not exist\n"
        if mark in self.marks:
            return 1, "", f"cannot create bookmark '{mark}': bookmark exists\n"
        self.marks[mark] = (found.guid, found.createtxg)
        return 0, "", ""

    def _snapshot(self, args: list[str]) -> tuple[int, str, str]:
        opts, names = _options(args, {"-o"})
        targets: list[tuple[str, str]] = []
        for full in names:
            ds, _, name = full.partition("@")
            if ds not in self.datasets:
                return 1, "", f"cannot open '{ds}': dataset does not exist\n"
            subtree = [d for d in self.datasets if is_descendant(d, ds)] if "-r" in opts else [ds]
            targets += [(d, name) for d in subtree]
        if len({pool_of(d) for d, _ in targets}) > 1:
            return 1, "", "cannot create snapshots : operation not applicable to datasets of this type\n"
        seen = [d for d, _ in targets]
        if len(seen) != len(set(seen)):
            return 1, "", "cannot create snapshots : operation not applicable to datasets of this type\n"
        existing = {s.full_name for s in self.snaps}
        for d, name in targets:
            if f"{d}@{name}" in existing:
                return 1, "", f"cannot create snapshot '{d}@{name}': dataset already exists\n"
        txg = next(self._txg)
        for d, name in targets:
            self.snaps.append(Snapshot(d, name, next(self._guid), txg, self.clock, 0, 0))
            self.changed[d] = self.clock
            self.datasets[d]["written"] = "0"
        return 0, "", ""

    def _destroy(self, args: list[str]) -> tuple[int, str, str]:
        opts, (arg,) = _options(args, set())
        if "#" in arg:
            if arg not in self.marks:
                return 1, "", f"bookmark '{arg}' does not exist.\n"
            del self.marks[arg]
            return 0, "", ""
        ds, _, joined = arg.partition("@")
        wanted = joined.split(",")
        if "-r" in opts:  # like ZFS: each name wherever it exists below ds, all-or-nothing
            if ds not in self.datasets:
                return 1, "", f"cannot open '{ds}': dataset does not exist\n"
            hit = [s for s in self.snaps if is_descendant(s.dataset, ds) and s.name in wanted]
            if not hit:
                return 1, "", "could not find any snapshots to destroy; check snapshot names.\n"
            busy = next((s for s in hit if s.userrefs), None)
            if busy:
                return 1, "", f"cannot destroy snapshot {busy.full_name}: dataset is busy\n"
            if "-n" not in opts:
                self.snaps = [s for s in self.snaps if s not in hit]
                self.changed.update(dict.fromkeys((s.dataset for s in hit), self.clock))
            return 0, "", ""
        index = {s.name: s for s in self.snaps if s.dataset == ds}
        for name in wanted:
            if name not in index:
                return 1, "", "could not find any snapshots to destroy; check snapshot names.\n"
            if index[name].userrefs:
                return 1, "", f"cannot destroy snapshot {ds}@{name}: dataset is busy\n"
        if "-n" in opts:
            lines = [f"destroy\t{ds}@{n}" for n in wanted]
            lines.append(f"reclaim\t{sum(index[n].used for n in wanted)}")
            return 0, "\n".join(lines) + "\n", ""
        self.snaps = [s for s in self.snaps if not (s.dataset == ds and s.name in wanted)]
        self.changed[ds] = self.clock
        return 0, "", ""

    def _hold(self, args: list[str]) -> tuple[int, str, str]:
        return self._refs(args, +1)

    def _release(self, args: list[str]) -> tuple[int, str, str]:
        return self._refs(args, -1)

    def _refs(self, args: list[str], delta: int) -> tuple[int, str, str]:
        tag, *names = args
        index = {s.full_name: i for i, s in enumerate(self.snaps)}
        for full in names:  # all-or-nothing, like ZFS
            if full not in index:
                return 1, "", f"cannot {'hold' if delta > 0 else 'release'} snapshot '{full}': dataset does not exist\n"
            tags = self.tags.get(full, set())
            if delta > 0 and tag in tags:
                return 1, "", f"cannot hold snapshot '{full}': tag already exists on this dataset\n"
            if delta < 0 and tag not in tags:
                return 1, "", f"cannot release hold from snapshot '{full}': no such tag on this dataset\n"
        for full in names:
            tags = self.tags.setdefault(full, set())
            (tags.add if delta > 0 else tags.discard)(tag)
            i = index[full]
            self.snaps[i] = replace(self.snaps[i], userrefs=len(tags))
        return 0, "", ""


def _options(args: list[str], with_value: set[str]) -> tuple[dict[str, str], list[str]]:
    opts: dict[str, str] = {}
    i = 0
    while i < len(args) and args[i].startswith("-") and len(args[i]) == 2:
        if args[i] in with_value:
            opts[args[i]] = args[i + 1]
            i += 2
        else:
            opts[args[i]] = ""
            i += 1
    return opts, args[i:]
