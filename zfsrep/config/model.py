"""The validated configuration: frozen dataclasses with every default filled in.

The TOML shape (documented in docs/config.md) maps one-to-one onto these classes; the NixOS
module renders the same shape from `services.zfsrep.settings`. Each field that is a key of the
file is declared with `schema.key` (its converter, default, and what to say when it is missing)
or `schema.table`: the one statement of the keys and defaults, which `config/validate.py` reads.
A cross-key rule of a table is its class's ``problems(path)``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from zfsrep.config import checker as c
from zfsrep.config.schema import key, table
from zfsrep.config.receive import ReceiveConfig
from zfsrep.core.labels import LABELS

DEFAULT_CONFIG_PATH = "/etc/zfsrep/config.toml"
CONFIG_ENV = "ZFSREP_CONFIG"


def _warn_before_crit(warn: float | None, crit: float | None, path: str) -> Iterator[tuple[str, str]]:
    if warn is not None and crit is not None and crit < warn:
        yield "crit", f"must not be shorter than {path}.warn"


def _one_url(url: str | None, url_file: str | None) -> Iterator[tuple[str, str]]:
    if (url is None) == (url_file is None):
        yield "", "set exactly one of url or url_file"


@dataclass(frozen=True)
class Retention:
    frequent: int = key(c.non_negative_int, 0)
    hourly: int = key(c.non_negative_int, 24)
    daily: int = key(c.non_negative_int, 7)
    weekly: int = key(c.non_negative_int, 4)
    monthly: int = key(c.non_negative_int, 12)
    yearly: int = key(c.non_negative_int, 0)

    def counts(self) -> dict[str, int]:
        return {label: getattr(self, label) for label in LABELS}


@dataclass(frozen=True)
class DatasetConfig:
    name: str = key(c.dataset_name, expected='a dataset name like "tank/home"')
    recursive: bool = key(c.boolean, False)
    exclude: tuple[str, ...] = key(c.string_list, ())
    retention: Retention = table(Retention)
    snapshot: bool = key(c.boolean, True)  # zfsrep snapshot takes and prunes snapshots for it
    targets: tuple[str, ...] | None = key(c.string_list, None)  # None: every target
    # run before / after this entry's snapshots, locally (argv lists; `zfsrep.hooks`)
    pre_snapshot: tuple[str, ...] | None = key(c.argv, None)
    post_snapshot: tuple[str, ...] | None = key(c.argv, None)
    hook_timeout: float = key(c.duration, 300.0)
    # no new snapshot of a dataset with fewer bytes `written` since its newest one; None: always
    min_change: int | None = key(c.byte_count, None)


@dataclass(frozen=True)
class Ec2Warmup:
    region: str = key(c.string, expected='an AWS region, e.g. "eu-central-1"')
    instance_id: str | None = key(c.string, None)
    launch_template: str | None = key(c.string, None)
    volume_id: str | None = key(c.string, None)
    device: str | None = key(c.string, None)
    pool: str | None = key(c.string, None)
    tags: dict[str, str] = key(c.string_table, default_factory=dict)
    address: str = key(c.one_of("public_ip", "private_ip", "public_dns", "private_dns"), "public_ip")
    after: str = key(c.one_of("stop", "terminate", "keep"), "stop")  # "terminate" with launch_template
    detach_volume: bool = key(c.boolean, False)
    start_timeout: float = key(c.duration, 600.0)
    ssh_timeout: float = key(c.duration, 300.0)
    max_uptime: float = key(c.duration, 6 * 3600.0)  # teardown --reap stops instances up longer than this
    remote_command: tuple[str, ...] | None = key(c.argv, None)
    endpoint_url: str | None = key(c.string, None)  # for tests and private endpoints; normally unset
    type: str = key(c.one_of("ec2", "command"), "ec2")


@dataclass(frozen=True)
class CommandWarmup:
    command: tuple[str, ...] = key(c.argv, expected="a command as an array of arguments")
    teardown_command: tuple[str, ...] | None = key(c.argv, None)
    pool: str | None = key(c.string, None)
    ssh_timeout: float = key(c.duration, 300.0)
    remote_command: tuple[str, ...] | None = key(c.argv, None)
    type: str = key(c.one_of("ec2", "command"), "command")


Warmup = Ec2Warmup | CommandWarmup
WARMUPS: dict[str, type[Ec2Warmup] | type[CommandWarmup]] = {"ec2": Ec2Warmup, "command": CommandWarmup}


@dataclass(frozen=True)
class TargetConfig:
    name: str  # the table's name in [targets.NAME]
    host: str | None = key(c.string, None)  # None: a warmup provides the address
    dataset: str = key(c.dataset_name, expected='the receiving parent dataset, e.g. "backup/hosts/web1"',
                       kw_only=True)  # receiving parent: <dataset>/<source path>
    user: str = key(c.string, "root")
    port: int = key(c.port, 22)
    ssh_options: tuple[str, ...] = key(c.string_list, ())  # each passed as `-o OPTION`
    identity_file: str | None = key(c.string, None)
    known_hosts: str | None = key(c.string, None)
    # the name the host key is pinned under (ssh -o HostKeyAlias=); None: the address itself,
    # or the target's name when a warmup supplies the address (it may change at each launch)
    host_key_alias: str | None = key(c.string, None)
    ssh_config: str | None = key(c.string, None)  # an OpenSSH config file passed with -F
    compress: str = key(c.one_of("none", "zstd", "lz4"), "none")
    mbuffer: str | None = key(c.size, None)  # buffer size, e.g. "256M"; None: no mbuffer
    rate_limit: str | None = key(c.size, None)  # e.g. "20M" bytes/s (needs mbuffer or pv)
    force: bool = key(c.boolean, False)  # zfs recv -F
    append_only: bool = key(c.boolean, False)  # the target runs `zfsrep serve` and prunes itself: never destroy there
    raw: bool = key(c.boolean, True)  # raw send (-w) for encrypted datasets
    # bookmark each sent snapshot on the source; send from it when the snapshot is gone there
    bookmarks: bool = key(c.boolean, True)
    properties: dict[str, str] = key(c.string_table, default_factory=lambda: {"canmount": "noauto"})
    retention: Retention | None = table(Retention, optional=True)  # None: the dataset's own retention
    lock_timeout: float = key(c.duration, 600.0)
    warn: float | None = key(c.duration, None)  # status thresholds (seconds); None: global
    crit: float | None = key(c.duration, None)
    warmup: Warmup | None = table(optional=True)

    def problems(self, path: str) -> Iterator[tuple[str, str]]:
        if self.force and self.append_only:
            yield "force", "an append_only target refuses `zfs receive -F`; set one of them to false"
        yield from _warn_before_crit(self.warn, self.crit, path)


@dataclass(frozen=True)
class HoneycombSink:
    key_file: str = key(c.string, expected="a file holding the API key (e.g. a systemd credential)")
    dataset: str = key(c.string, "zfsrep")
    api_host: str = key(c.base_url, "https://api.honeycomb.io")
    batch: bool = key(c.boolean, False)  # one POST to /1/batch/<dataset> instead of one per event to /1/events/<dataset>


@dataclass(frozen=True)
class PingSink:
    """healthchecks-style: success → url, failure → url + /fail, start → url + /start."""

    url: str | None = key(c.string, None)
    url_file: str | None = key(c.string, None)  # the URL is a secret: prefer a file (systemd credential)

    def problems(self, path: str) -> Iterator[tuple[str, str]]:
        return _one_url(self.url, self.url_file)


@dataclass(frozen=True)
class WebhookSink:
    url: str | None = key(c.string, None)
    url_file: str | None = key(c.string, None)
    headers_file: str | None = key(c.string, None)  # lines "Name: value", e.g. an Authorization header

    def problems(self, path: str) -> Iterator[tuple[str, str]]:
        return _one_url(self.url, self.url_file)


@dataclass(frozen=True)
class ReportConfig:
    """Each sink's table is named after its module in `zfsrep.sinks` (the registry)."""

    honeycomb: HoneycombSink | None = table(HoneycombSink, optional=True)
    healthchecks: PingSink | None = table(PingSink, optional=True)
    webhook: WebhookSink | None = table(WebhookSink, optional=True)
    timeout: float = key(c.duration, 10.0)
    retries: int = key(c.non_negative_int, 3)


@dataclass(frozen=True)
class StatusConfig:
    warn: float = key(c.duration, 26 * 3600.0)
    crit: float = key(c.duration, 50 * 3600.0)

    def problems(self, path: str) -> Iterator[tuple[str, str]]:
        return _warn_before_crit(self.warn, self.crit, path)


@dataclass(frozen=True)
class Config:
    """The file's top-level keys. A table whose keys are all values (as [status]) needs only its
    class and a field here, `table(ItsClass)`: validate reads it, `config show` renders it."""

    datasets: tuple[DatasetConfig, ...] = table(default_factory=tuple)
    targets: dict[str, TargetConfig] = table(default_factory=dict)
    retention: Retention = table(Retention)
    report: ReportConfig = table(ReportConfig)
    status: StatusConfig = table(StatusConfig)
    state_dir: str = key(c.string, "/var/lib/zfsrep")
    lock_dir: str = key(c.string, "/run/zfsrep")
    receive: ReceiveConfig | None = table(optional=True)  # [receive]: this host as a target that prunes itself (own reader)
    path: str | None = None  # the file it was read from

    def targets_for(self, dataset: DatasetConfig) -> list[TargetConfig]:
        names = dataset.targets if dataset.targets is not None else tuple(self.targets)
        return [self.targets[n] for n in names if n in self.targets]

    def target_retention(self, target: TargetConfig, dataset: DatasetConfig) -> Retention:
        return target.retention if target.retention is not None else dataset.retention
