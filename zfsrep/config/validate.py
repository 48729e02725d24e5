"""Turn the parsed TOML document into a `Config`, reporting every problem at once."""

from __future__ import annotations

from typing import Any

from zfsrep.config import checker as c
from zfsrep.config.model import (
    CommandWarmup,
    Config,
    DatasetConfig,
    Ec2Warmup,
    HoneycombSink,
    PingSink,
    ReportConfig,
    Retention,
    StatusConfig,
    TargetConfig,
    WebhookSink,
)
from zfsrep.core import receive_properties
from zfsrep.core.labels import LABELS
from zfsrep.errors import ConfigError

TOP_KEYS = {"state_dir", "lock_dir", "retention", "datasets", "targets", "report", "status"}
DATASET_KEYS = {"name", "recursive", "exclude", "retention", "snapshot", "targets"}
TARGET_KEYS = {
    "host", "user", "port", "dataset", "ssh_options", "identity_file", "known_hosts",
    "host_key_alias", "ssh_config", "compress", "mbuffer", "rate_limit", "force", "raw", "properties",
    "retention", "lock_timeout", "warn", "crit", "warmup",
}
EC2_KEYS = {
    "type", "region", "instance_id", "launch_template", "volume_id", "device", "pool", "tags",
    "address", "after", "detach_volume", "start_timeout", "ssh_timeout", "max_uptime",
    "remote_command", "endpoint_url",
}
COMMAND_KEYS = {"type", "command", "teardown_command", "pool", "ssh_timeout", "remote_command"}


def validate(data: dict[str, Any], *, path: str | None = None) -> Config:
    ck = c.Checker()
    top = ck.table(data, "", TOP_KEYS)
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

    report = _report(ck, top.get("report", {}), "report")
    status = _status(ck, top.get("status", {}), "status")
    state_dir = ck.get(top, "", "state_dir", c.string, "/var/lib/zfsrep")
    lock_dir = ck.get(top, "", "lock_dir", c.string, "/run/zfsrep")

    if ck.problems:
        raise ConfigError(ck.problems, path=path)
    return Config(
        datasets=tuple(datasets),
        targets=targets,
        retention=default_retention,
        report=report,
        status=status,
        state_dir=state_dir,
        lock_dir=lock_dir,
        path=path,
    )


def _retention(ck: c.Checker, raw: Any, path: str, base: Retention) -> Retention:
    table = ck.table(raw, path, set(LABELS))
    counts = {label: ck.get(table, path, label, c.non_negative_int, getattr(base, label)) for label in LABELS}
    return Retention(**counts)


def _dataset(ck: c.Checker, raw: Any, path: str, default: Retention, target_names: set[str]) -> DatasetConfig | None:
    table = ck.table(raw, path, DATASET_KEYS)
    if not isinstance(raw, dict):
        return None
    name = ck.get(table, path, "name", c.dataset_name, expected='a dataset name like "tank/home"')
    recursive = ck.get(table, path, "recursive", c.boolean, False)
    exclude = ck.get(table, path, "exclude", c.string_list, ())
    for j, child in enumerate(exclude or ()):
        if name and not child.startswith(name + "/"):
            ck.error(f"{path}.exclude[{j}]", f"{child!r} is not a child of {name!r}")
    if exclude and not recursive:
        ck.error(f"{path}.exclude", "only makes sense with recursive = true")
    retention = _retention(ck, table.get("retention", {}), f"{path}.retention", default)
    targets = ck.get(table, path, "targets", c.string_list, None)
    for j, t in enumerate(targets or ()):
        if t not in target_names:
            ck.error(f"{path}.targets[{j}]", f"no target named {t!r} (define [targets.{t}])")
    if name is None:
        return None
    return DatasetConfig(
        name=name,
        recursive=bool(recursive),
        exclude=tuple(exclude or ()),
        retention=retention,
        snapshot=ck.get(table, path, "snapshot", c.boolean, True),
        targets=targets,
    )


def _target(ck: c.Checker, raw: Any, path: str, name: str, default: Retention) -> TargetConfig | None:
    table = ck.table(raw, path, TARGET_KEYS)
    if not isinstance(raw, dict):
        return None
    get = lambda key, conv, default=c._MISSING, expected="": ck.get(table, path, key, conv, default, expected)  # noqa: E731
    dataset = get("dataset", c.dataset_name, expected='the receiving parent dataset, e.g. "backup/hosts/web1"')
    retention = None
    if "retention" in table:
        retention = _retention(ck, table["retention"], f"{path}.retention", default)
    warmup = None
    if "warmup" in table:
        warmup = _warmup(ck, table["warmup"], f"{path}.warmup")
    host = get("host", c.string, None)
    if host is None and warmup is None and "warmup" not in table:
        ck.error(f"{path}.host", "required (or a warmup that provides the address: ec2, or a command that prints it)")
    rate_limit = get("rate_limit", c.size, None)
    mbuffer = get("mbuffer", c.size, None)
    target = TargetConfig(
        name=name,
        host=host,
        dataset=dataset,
        user=get("user", c.string, "root"),
        port=get("port", c.port, 22),
        ssh_options=get("ssh_options", c.string_list, ()),
        identity_file=get("identity_file", c.string, None),
        known_hosts=get("known_hosts", c.string, None),
        host_key_alias=get("host_key_alias", c.string, None if host else name),
        ssh_config=get("ssh_config", c.string, None),
        compress=get("compress", c.one_of("none", "zstd", "lz4"), "none"),
        mbuffer=mbuffer,
        rate_limit=rate_limit,
        force=get("force", c.boolean, False),
        raw=get("raw", c.boolean, True),
        properties=get("properties", c.string_table, {"canmount": "noauto"}),
        retention=retention,
        lock_timeout=get("lock_timeout", c.duration, 600.0),
        warn=get("warn", c.duration, None),
        crit=get("crit", c.duration, None),
        warmup=warmup,
    )
    _check_properties(ck, target.properties or {}, f"{path}.properties")
    if target.warn is not None and target.crit is not None and target.crit < target.warn:
        ck.error(f"{path}.crit", f"must not be shorter than {path}.warn")
    return target if dataset is not None else None


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
    kind = ck.get(raw, path, "type", c.one_of("ec2", "command"), expected='"ec2" or "command"')
    if kind == "command":
        table = ck.table(raw, path, COMMAND_KEYS)
        command = ck.get(table, path, "command", c.argv, expected="a command as an array of arguments")
        result = CommandWarmup(
            command=command or (),
            teardown_command=ck.get(table, path, "teardown_command", c.argv, None),
            pool=ck.get(table, path, "pool", c.string, None),
            ssh_timeout=ck.get(table, path, "ssh_timeout", c.duration, 300.0),
            remote_command=ck.get(table, path, "remote_command", c.argv, None),
        )
        return result if command else None
    if kind == "ec2":
        table = ck.table(raw, path, EC2_KEYS)
        get = lambda key, conv, default=c._MISSING, expected="": ck.get(table, path, key, conv, default, expected)  # noqa: E731
        region = get("region", c.string, expected='an AWS region, e.g. "eu-central-1"')
        instance_id = get("instance_id", c.string, None)
        template = get("launch_template", c.string, None)
        if (instance_id is None) == (template is None):
            ck.error(path, "set exactly one of instance_id (start/stop an instance) or launch_template (launch/terminate)")
        volume_id = get("volume_id", c.string, None)
        device = get("device", c.string, None)
        if volume_id and not device:
            ck.error(f"{path}.device", 'required with volume_id, e.g. "/dev/xvdf"')
        after = get("after", c.one_of("stop", "terminate", "keep"), "terminate" if template else "stop")
        if after == "terminate" and instance_id:
            ck.error(f"{path}.after", '"terminate" is only for instances zfsrep launches (launch_template); use "stop"')
        if region is None:
            return None
        return Ec2Warmup(
            region=region,
            instance_id=instance_id,
            launch_template=template,
            volume_id=volume_id,
            device=device,
            pool=get("pool", c.string, None),
            tags=get("tags", c.string_table, {}),
            address=get("address", c.one_of("public_ip", "private_ip", "public_dns", "private_dns"), "public_ip"),
            after=after,
            detach_volume=get("detach_volume", c.boolean, False),
            start_timeout=get("start_timeout", c.duration, 600.0),
            ssh_timeout=get("ssh_timeout", c.duration, 300.0),
            max_uptime=get("max_uptime", c.duration, 6 * 3600.0),
            remote_command=get("remote_command", c.argv, None),
            endpoint_url=get("endpoint_url", c.string, None),
        )
    return None


def _report(ck: c.Checker, raw: Any, path: str) -> ReportConfig:
    table = ck.table(raw, path, {"honeycomb", "healthchecks", "webhook", "timeout", "retries"})
    honeycomb = healthchecks = webhook = None
    if "honeycomb" in table:
        p = f"{path}.honeycomb"
        t = ck.table(table["honeycomb"], p, {"key_file", "dataset", "api_host", "batch"})
        key_file = ck.get(t, p, "key_file", c.string, expected="a file holding the API key (e.g. a systemd credential)")
        if key_file:
            honeycomb = HoneycombSink(
                key_file=key_file,
                dataset=ck.get(t, p, "dataset", c.string, "zfsrep"),
                api_host=ck.get(t, p, "api_host", c.string, "https://api.honeycomb.io").rstrip("/"),
                batch=ck.get(t, p, "batch", c.boolean, False),
            )
    for key in ("healthchecks", "webhook"):
        if key not in table:
            continue
        p = f"{path}.{key}"
        known = {"url", "url_file"} | ({"headers_file"} if key == "webhook" else set())
        t = ck.table(table[key], p, known)
        url = ck.get(t, p, "url", c.string, None)
        url_file = ck.get(t, p, "url_file", c.string, None)
        if (url is None) == (url_file is None):
            ck.error(p, "set exactly one of url or url_file")
        if key == "healthchecks":
            healthchecks = PingSink(url=url, url_file=url_file)
        else:
            webhook = WebhookSink(url=url, url_file=url_file, headers_file=ck.get(t, p, "headers_file", c.string, None))
    return ReportConfig(
        honeycomb=honeycomb,
        healthchecks=healthchecks,
        webhook=webhook,
        timeout=ck.get(table, path, "timeout", c.duration, 10.0),
        retries=ck.get(table, path, "retries", c.non_negative_int, 3),
    )


def _status(ck: c.Checker, raw: Any, path: str) -> StatusConfig:
    table = ck.table(raw, path, {"warn", "crit"})
    warn = ck.get(table, path, "warn", c.duration, 26 * 3600.0)
    crit = ck.get(table, path, "crit", c.duration, 50 * 3600.0)
    if warn is not None and crit is not None and crit < warn:
        ck.error(f"{path}.crit", "must not be shorter than status.warn")
    return StatusConfig(warn=warn, crit=crit)
