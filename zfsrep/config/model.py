"""The validated configuration: frozen dataclasses with every default filled in.

The TOML shape (documented in docs/config.md) maps one-to-one onto these classes; the NixOS
module renders the same shape from `services.zfsrep.settings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zfsrep.core.labels import LABELS

DEFAULT_CONFIG_PATH = "/etc/zfsrep/config.toml"
CONFIG_ENV = "ZFSREP_CONFIG"


@dataclass(frozen=True)
class Retention:
    frequent: int = 0
    hourly: int = 24
    daily: int = 7
    weekly: int = 4
    monthly: int = 12
    yearly: int = 0

    def counts(self) -> dict[str, int]:
        return {label: getattr(self, label) for label in LABELS}


@dataclass(frozen=True)
class DatasetConfig:
    name: str
    recursive: bool = False
    exclude: tuple[str, ...] = ()
    retention: Retention = field(default_factory=Retention)
    snapshot: bool = True  # zfsrep snapshot takes and prunes snapshots for it
    targets: tuple[str, ...] | None = None  # None: every target


@dataclass(frozen=True)
class Ec2Warmup:
    region: str
    instance_id: str | None = None
    launch_template: str | None = None
    volume_id: str | None = None
    device: str | None = None
    pool: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    address: str = "public_ip"  # public_ip | private_ip | public_dns | private_dns
    after: str = "stop"  # stop | terminate | keep
    detach_volume: bool = False
    start_timeout: float = 600.0
    ssh_timeout: float = 300.0
    max_uptime: float = 6 * 3600.0  # teardown --reap stops instances up longer than this
    remote_command: tuple[str, ...] | None = None
    endpoint_url: str | None = None  # for tests and private endpoints; normally unset
    type: str = "ec2"


@dataclass(frozen=True)
class CommandWarmup:
    command: tuple[str, ...]
    teardown_command: tuple[str, ...] | None = None
    pool: str | None = None
    ssh_timeout: float = 300.0
    remote_command: tuple[str, ...] | None = None
    type: str = "command"


Warmup = Ec2Warmup | CommandWarmup


@dataclass(frozen=True)
class TargetConfig:
    name: str
    host: str | None
    dataset: str  # receiving parent: <dataset>/<source path>
    user: str = "root"
    port: int = 22
    ssh_options: tuple[str, ...] = ()  # each passed as `-o OPTION`
    identity_file: str | None = None
    known_hosts: str | None = None
    # the name the host key is pinned under (ssh -o HostKeyAlias=); None: the address itself,
    # or the target's name when a warmup supplies the address (it may change at each launch)
    host_key_alias: str | None = None
    ssh_config: str | None = None  # an OpenSSH config file passed with -F
    compress: str = "none"  # none | zstd | lz4
    mbuffer: str | None = None  # buffer size, e.g. "256M"; None: no mbuffer
    rate_limit: str | None = None  # e.g. "20M" bytes/s (needs mbuffer or pv)
    force: bool = False  # zfs recv -F
    raw: bool = True  # raw send (-w) for encrypted datasets
    properties: dict[str, str] = field(default_factory=lambda: {"canmount": "noauto"})
    retention: Retention | None = None  # None: the dataset's own retention
    lock_timeout: float = 600.0
    warn: float | None = None  # status thresholds (seconds); None: global
    crit: float | None = None
    warmup: Warmup | None = None


@dataclass(frozen=True)
class HoneycombSink:
    key_file: str
    dataset: str = "zfsrep"
    api_host: str = "https://api.honeycomb.io"
    batch: bool = False  # one POST to /1/batch/<dataset> instead of one per event to /1/events/<dataset>


@dataclass(frozen=True)
class PingSink:
    """healthchecks-style: success → url, failure → url + /fail, start → url + /start."""

    url: str | None = None
    url_file: str | None = None  # the URL is a secret: prefer a file (systemd credential)


@dataclass(frozen=True)
class WebhookSink:
    url: str | None = None
    url_file: str | None = None
    headers_file: str | None = None  # lines "Name: value", e.g. an Authorization header


@dataclass(frozen=True)
class ReportConfig:
    honeycomb: HoneycombSink | None = None
    healthchecks: PingSink | None = None
    webhook: WebhookSink | None = None
    timeout: float = 10.0
    retries: int = 3


@dataclass(frozen=True)
class StatusConfig:
    warn: float = 26 * 3600.0
    crit: float = 50 * 3600.0


@dataclass(frozen=True)
class Config:
    datasets: tuple[DatasetConfig, ...] = ()
    targets: dict[str, TargetConfig] = field(default_factory=dict)
    retention: Retention = field(default_factory=Retention)
    report: ReportConfig = field(default_factory=ReportConfig)
    status: StatusConfig = field(default_factory=StatusConfig)
    state_dir: str = "/var/lib/zfsrep"
    lock_dir: str = "/run/zfsrep"
    path: str | None = None  # the file it was read from

    def targets_for(self, dataset: DatasetConfig) -> list[TargetConfig]:
        names = dataset.targets if dataset.targets is not None else tuple(self.targets)
        return [self.targets[n] for n in names if n in self.targets]

    def target_retention(self, target: TargetConfig, dataset: DatasetConfig) -> Retention:
        return target.retention if target.retention is not None else dataset.retention
