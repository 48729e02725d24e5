"""Group planned snapshot destroys into as few `zfs destroy` invocations as is safe. Pure.

`zfs destroy` takes ONE ``dataset@a,b,c`` argument; with ``-r`` it destroys those names in the
dataset and in every descendant filesystem/volume that has them (missing names are skipped),
all-or-nothing. So ``-r`` is used on a subtree root only where that destroys exactly the planned
snapshots: for each name, a dataset ``r`` is a valid ``-r`` root when

* ``r`` itself is planned to destroy that name, and
* every dataset below ``r`` in the recursive listing has known snapshots (an excluded or
  unmanaged dataset whose snapshots were not listed forbids ``-r`` above it), and
* every dataset below ``r`` that has a snapshot of that name is planned to destroy it (a
  held, protected, kept or foreign snapshot of the same name forbids it).

Each planned ``(dataset, name)`` is destroyed by the topmost valid root above it (or itself);
what no valid root covers is destroyed per dataset (``ds@a,b,c``, no ``-r``). A root that would
only cover itself needs no ``-r``. Trees where every dataset prunes the same names therefore
take one command per subtree root, instead of one per dataset.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from zfsrep.core.snapshot import parent_of


@dataclass(frozen=True)
class DestroyCommand:
    """One `zfs destroy [-r] root@names` and the planned snapshots it removes."""

    root: str
    names: tuple[str, ...]
    recursive: bool
    targets: tuple[tuple[str, tuple[str, ...]], ...]  # (dataset, names it loses), root first

    @property
    def datasets(self) -> tuple[str, ...]:
        return tuple(d for d, _ in self.targets)


def group_destroys(
    destroy: Mapping[str, Sequence[str]],
    listed: Iterable[str],
    known: Mapping[str, Collection[str]],
) -> list[DestroyCommand]:
    """``destroy``: ``{dataset: snapshot names to destroy}``; ``listed``: every dataset in the
    recursive listings (the whole subtree below any dataset that may become a ``-r`` root);
    ``known``: ``{dataset: names of ALL its snapshots}`` for each dataset whose snapshots were
    listed (a listed dataset missing here is unknown and blocks ``-r`` above it)."""
    order = list(dict.fromkeys(listed))
    in_tree = set(order)
    wanted = {d: list(dict.fromkeys(ns)) for d, ns in destroy.items() if ns}
    blocked, unknown = _subtree_blockers(order, wanted, known)

    def valid(root: str, name: str) -> bool:
        return root in in_tree and not unknown[root] and name not in blocked[root]

    covered_by: dict[tuple[str, str], str] = {}  # (dataset, name) -> the root that destroys it
    for dataset, names in wanted.items():
        for name in names:
            root = dataset
            for ancestor in _ancestors(dataset):
                if ancestor not in in_tree:
                    break  # above the listed subtree: its other children are unknown
                if name in wanted.get(ancestor, ()) and valid(ancestor, name):
                    root = ancestor
            covered_by[(dataset, name)] = root  # itself when no ancestor may -r it

    # per root: the names it destroys and, for each, the datasets it reaches
    reach: dict[str, dict[str, list[str]]] = {}
    for (dataset, name), root in covered_by.items():
        reach.setdefault(root, {}).setdefault(name, []).append(dataset)
    commands: list[DestroyCommand] = []
    positions = {d: i for i, d in enumerate(order)}
    for root in sorted(reach, key=lambda d: (positions.get(d, len(order)), d)):
        by_name = reach[root]
        wide = [n for n in wanted.get(root, ()) if n in by_name and by_name[n] != [root]]
        if wide:  # -r for every name this root is valid for; the rest (if any) without -r
            recursive = [n for n in wanted[root] if n in by_name and valid(root, n)]
            commands.append(_command(root, recursive, True, by_name, positions))
            plain = [n for n in wanted[root] if n in by_name and n not in recursive]
        else:
            plain = [n for n in wanted[root] if n in by_name]
        if plain:
            commands.append(_command(root, plain, False, by_name, positions))
    return commands


def covered(commands: Iterable[DestroyCommand]) -> dict[str, list[str]]:
    """``{dataset: names}`` the commands destroy (planned view), in command order."""
    out: dict[str, list[str]] = {}
    for command in commands:
        for dataset, names in command.targets:
            out.setdefault(dataset, []).extend(names)
    return out


def _command(root: str, names: Sequence[str], recursive: bool, by_name: Mapping[str, Sequence[str]],
             positions: Mapping[str, int]) -> DestroyCommand:
    per_dataset: dict[str, list[str]] = {}
    for name in names:
        for dataset in by_name[name]:
            per_dataset.setdefault(dataset, []).append(name)
    datasets = sorted(per_dataset, key=lambda d: (d != root, positions.get(d, len(positions)), d))
    return DestroyCommand(root, tuple(names), recursive, tuple((d, tuple(per_dataset[d])) for d in datasets))


def _subtree_blockers(
    order: Sequence[str], wanted: Mapping[str, Sequence[str]], known: Mapping[str, Collection[str]]
) -> tuple[dict[str, set[str]], dict[str, bool]]:
    """For each listed dataset: the names some dataset in its subtree (itself included) has but
    must keep, and whether any dataset in its subtree has unknown snapshots."""
    blocked = {d: set(known.get(d, ())) - set(wanted.get(d, ())) for d in order}
    unknown = {d: d not in known for d in order}
    for dataset in sorted(order, key=lambda d: d.count("/"), reverse=True):
        parent = parent_of(dataset)
        if parent in blocked:
            blocked[parent] |= blocked[dataset]
            unknown[parent] = unknown[parent] or unknown[dataset]
    return blocked, unknown


def _ancestors(dataset: str) -> list[str]:
    """Parent first, up to the pool root."""
    out = []
    parent = parent_of(dataset)
    while parent is not None:
        out.append(parent)
        parent = parent_of(parent)
    return out
