"""What a run means, before anything is reached: the name a dataset's copy has on a target
(and back), which targets and which configured datasets a run is about, and which datasets an
entry covers. Pure: no I/O; the actions use it, and so may any verb that only needs a name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from zfsrep.config.model import Config, DatasetConfig, TargetConfig
from zfsrep.core.coverage import covers, governing_entry
from zfsrep.errors import UsageError

__all__ = ["TargetCopies", "UnknownTargetError", "check_targets", "covered", "covers", "governing_entry",
           "pick_datasets", "pick_targets", "require_target", "selected_entries", "source_dataset",
           "target_dataset", "warmup_targets"]


# --- what a copy is called ---------------------------------------------------------------------

def target_dataset(target: TargetConfig, source: str) -> str:
    """The copy of the source dataset ``source`` on ``target``: ``<targets.NAME.dataset>/<source>``."""
    return f"{target.dataset}/{source}"


def source_dataset(target: TargetConfig, copy: str) -> str | None:
    """The inverse of `target_dataset`; None for a dataset outside the target's tree."""
    prefix = target.dataset + "/"
    return copy[len(prefix):] if copy.startswith(prefix) else None


@dataclass(frozen=True)
class TargetCopies:
    """The names a target's copies of the configured datasets have (`name in copies`), known
    from the config alone, before the source is listed: a copy of a dataset that one of
    ``entries`` covers."""
    target: TargetConfig
    entries: tuple[DatasetConfig, ...]  # the chosen entries that go to this target

    @classmethod
    def of(cls, target: TargetConfig, chosen: Sequence[DatasetConfig], config: Config) -> TargetCopies:
        return cls(target, tuple(d for d in chosen if target.name in {t.name for t in config.targets_for(d)}))

    def __contains__(self, name: object) -> bool:
        source = source_dataset(self.target, name) if isinstance(name, str) else None
        return source is not None and any(covers(e, source) for e in self.entries)


# --- which targets -----------------------------------------------------------------------------

class UnknownTargetError(UsageError):
    """A target was named (``--target``, ``--scrub-target``) that the config does not define."""


def check_targets(config: Config, names: Iterable[str] | None, *, option: str = "--target") -> None:
    """Raise `UnknownTargetError` if any of ``names`` is not a target of ``config``: the one check
    and the one wording, naming the config file, the known targets and the fix."""
    unknown = list(dict.fromkeys(n for n in names or () if n not in config.targets))
    if not unknown:
        return
    known = ", ".join(sorted(config.targets)) or "none"
    tables = ", ".join(f"[targets.{n}]" for n in unknown)
    raise UnknownTargetError(f"no target named {', '.join(map(repr, unknown))} in {config.path or 'the config'} "
                             f"(known: {known}); check {option}, or add {tables} to the config")


def pick_targets(config: Config, names: list[str] | None) -> list[TargetConfig]:
    """The targets named (in that order), or every target (in the config's order)."""
    if not names:
        return list(config.targets.values())
    check_targets(config, names)
    return [config.targets[n] for n in names]


def require_target(config: Config, name: str) -> TargetConfig:
    return pick_targets(config, [name])[0]


def warmup_targets(config: Config, names: list[str] | None) -> list[TargetConfig]:
    """The targets with a ``warmup`` table, limited to ``names`` (each must exist and have one)."""
    if names:
        check_targets(config, names)
        problems = [f"target {n} has no [targets.{n}.warmup] table; nothing to warm up or tear down"
                    for n in names if config.targets[n].warmup is None]
        if problems:
            raise UsageError("; ".join(problems))
        return [config.targets[n] for n in names]
    return [t for t in config.targets.values() if t.warmup is not None]


# --- which datasets ----------------------------------------------------------------------------

def pick_datasets(config: Config, names: Sequence[str] | None) -> list[DatasetConfig]:
    """The configured entries named (each must be a ``datasets[].name``), or all, in the config's order."""
    missing = sorted(set(names or ()) - {d.name for d in config.datasets})
    if missing:
        raise UsageError(f"dataset {', '.join(missing)} is not configured (datasets[].name)")
    return [d for d in config.datasets if not names or d.name in names]


def selected_entries(config: Config, dataset: str | None) -> list[DatasetConfig]:
    """The entries a verb's DATASET argument means (all when None); a DATASET the config does
    not name is its own entry, with the targets of the entry covering it, if any."""
    if dataset is None:
        if not config.datasets:
            raise UsageError(f"no datasets configured in {config.path or 'the config'}; add a [[datasets]] entry")
        return list(config.datasets)
    dataset = dataset.split("@", 1)[0].rstrip("/")
    entry = governing_entry(config.datasets, dataset)
    if entry is None:
        return [DatasetConfig(name=dataset)]
    return [DatasetConfig(name=dataset, targets=entry.targets)] if entry.name != dataset else [entry]


# --- which datasets an entry covers: the rule is `zfsrep.core.coverage` (core needs it too) ---------

def covered(entry: DatasetConfig, listed: Sequence[str]) -> list[str]:
    """The datasets of ``listed`` that ``entry`` covers, in ``listed`` order, with the entry's own
    dataset first if it is not among them (listed or not)."""
    out = [d for d in listed if covers(entry, d)]
    return out if entry.name in out else [entry.name, *out]
