"""Turn the parsed TOML document into a `Config`, reporting every problem at once.

The keys, their converters and defaults are stated in `config/model.py` (`schema.key`,
`schema.table`); this module reads them from there and adds what a declaration cannot say: the
tables with their own shape (datasets, targets, warmups, retention that inherits), and the rules
that look at more than one table. A top-level table of plain keys needs nothing here.
"""

from __future__ import annotations

from typing import Any

from zfsrep.config import checker as c
from zfsrep.config import schema
from zfsrep.config.model import (
    WARMUPS,
    CommandWarmup,
    Config,
    DatasetConfig,
    Ec2Warmup,
    Retention,
    TargetConfig,
)
from zfsrep.config.receive import read_receive
from zfsrep.core import receive_properties
from zfsrep.errors import ConfigError

# The tables of Config read below; every other key of Config is read from its declaration.
OWN_READERS = {"retention", "targets", "datasets", "receive"}


def validate(data: dict[str, Any], *, path: str | None = None) -> Config:
    ck = c.Checker()
    top = ck.table(data, "", schema.keys(Config))
    default_retention = _retention(ck, top.get("retention", {}), "retention", Retention())

    targets: dict[str, TargetConfig] = {}
    raw_targets = top.get("targets", {})
    if not isinstance(raw_targets, dict):
        ck.error("targets", f"expected a table of targets ([targets.NAME]), got {c.describe(raw_targets)}")
        raw_targets = {}
    for name, raw in raw_targets.items():
        target = _target(ck, raw, f"targets.{name}", name, default_retention)
        if target is not None:
            targets[name] = target

    datasets: list[DatasetConfig] = []
    raw_datasets = top.get("datasets", [])
    if not isinstance(raw_datasets, list):
        ck.error("datasets", f"expected an array of tables ([[datasets]]), got {c.describe(raw_datasets)}")
        raw_datasets = []
    seen: dict[str, int] = {}
    for i, raw in enumerate(raw_datasets):
        ds = _dataset(ck, raw, f"datasets[{i}]", default_retention, set(targets) | set(raw_targets))
        if ds is None:
            continue
        if ds.name in seen:
            ck.error(f"datasets[{i}].name", f"{ds.name!r} is already configured at datasets[{seen[ds.name]}]")
        seen[ds.name] = i
        datasets.append(ds)

    rest = schema.read_fields(ck, Config, top, "", skip=OWN_READERS)
    receive = read_receive(ck, top["receive"], "receive", lambda raw, p: _retention(
        ck, raw, p, default_retention)) if "receive" in top else None

    if ck.problems:
        raise ConfigError(ck.problems, path=path)
    return Config(
        datasets=tuple(datasets),
        targets=targets,
        retention=default_retention,
        **rest,
        receive=receive,
        path=path,
    )


def _retention(ck: c.Checker, raw: Any, path: str, base: Retention) -> Retention:
    """A retention table; a count it leaves out is ``base``'s (the defaults, or the [retention]
    a dataset or target inherits)."""
    table = ck.table(raw, path, schema.keys(Retention))
    return Retention(**schema.read_fields(ck, Retention, table, path, defaults=base.counts()))


def _dataset(ck: c.Checker, raw: Any, path: str, default: Retention, target_names: set[str]) -> DatasetConfig | None:
    table = ck.table(raw, path, schema.keys(DatasetConfig))
    if not isinstance(raw, dict):
        return None
    found = schema.read_fields(ck, DatasetConfig, table, path, skip={"retention"})
    name, exclude, targets = found["name"], found["exclude"], found["targets"]
    for j, child in enumerate(exclude):
        if name and not child.startswith(name + "/"):
            ck.error(f"{path}.exclude[{j}]", f"{child!r} is not a child of {name!r}")
    if exclude and not found["recursive"]:
        ck.error(f"{path}.exclude", "only makes sense with recursive = true")
    for key in ("pre_snapshot", "post_snapshot", "min_change"):
        if found[key] is not None and found["snapshot"] is False:
            ck.error(f"{path}.{key}", "only makes sense with snapshot = true (zfsrep snapshot never runs for it)")
    retention = _retention(ck, table.get("retention", {}), f"{path}.retention", default)
    for j, t in enumerate(targets or ()):
        if t not in target_names:
            ck.error(f"{path}.targets[{j}]", f"no target named {t!r} (define [targets.{t}])")
    if name is None:
        return None
    return DatasetConfig(**found, retention=retention)


def _target(ck: c.Checker, raw: Any, path: str, name: str, default: Retention) -> TargetConfig | None:
    table = ck.table(raw, path, schema.keys(TargetConfig))
    if not isinstance(raw, dict):
        return None
    found = schema.read_fields(ck, TargetConfig, table, path, skip={"retention"})
    retention = None
    if "retention" in table:
        retention = _retention(ck, table["retention"], f"{path}.retention", default)
    warmup = None
    if "warmup" in table:
        warmup = _warmup(ck, table["warmup"], f"{path}.warmup")
    if found["host"] is None and warmup is None and "warmup" not in table:
        ck.error(f"{path}.host", "required (or a warmup that provides the address: ec2, or a command that prints it)")
    if found["host_key_alias"] is None and not found["host"]:
        found["host_key_alias"] = name  # a warmup's address may change at each launch
    target = TargetConfig(name=name, **found, retention=retention, warmup=warmup)
    _check_properties(ck, target.properties or {}, f"{path}.properties")
    schema.check_rules(ck, target, path)
    return target if target.dataset is not None else None


def _check_properties(ck: c.Checker, properties: dict[str, str], path: str) -> None:
    """Each property a receive is to set: a name zfs knows that a receive may set, and a
    value it can take (`core.receive_properties`)."""
    for name, value in properties.items():
        problem = receive_properties.problem(name, value)
        if problem == receive_properties.NOT_A_PROPERTY:
            hint = c.close_match(name, set(receive_properties.known()))
            problem += f" (did you mean {hint!r}?)" if hint else " (names are lowercase; a user property has a colon)"
        if problem:
            ck.error(c.join(path, name), problem)


def _warmup(ck: c.Checker, raw: Any, path: str) -> Ec2Warmup | CommandWarmup | None:
    if not isinstance(raw, dict):
        ck.error(path, f"expected a table, got {c.describe(raw)}")
        return None
    kind = ck.get(raw, path, "type", c.one_of(*WARMUPS), expected=" or ".join(f'"{k}"' for k in WARMUPS))
    if kind == "command":
        table = ck.table(raw, path, schema.keys(CommandWarmup))
        found = schema.read_fields(ck, CommandWarmup, table, path, skip={"type"})
        return CommandWarmup(**found) if found["command"] else None
    if kind == "ec2":
        table = ck.table(raw, path, schema.keys(Ec2Warmup))
        found = schema.read_fields(ck, Ec2Warmup, table, path, skip={"type", "after"})
        # zfsrep terminates an instance it launched, and stops one it started
        found["after"] = schema.get(ck, Ec2Warmup, table, path, "after",
                                    "terminate" if found["launch_template"] else "stop")
        if (found["instance_id"] is None) == (found["launch_template"] is None):
            ck.error(path, "set exactly one of instance_id (start/stop an instance) or launch_template (launch/terminate)")
        if found["volume_id"] and not found["device"]:
            ck.error(f"{path}.device", 'required with volume_id, e.g. "/dev/xvdf"')
        if found["after"] == "terminate" and found["instance_id"]:
            ck.error(f"{path}.after", '"terminate" is only for instances zfsrep launches (launch_template); use "stop"')
        return Ec2Warmup(**found) if found["region"] is not None else None
    return None
