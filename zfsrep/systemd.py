"""The systemd units of zfsrep: `zfs-snapshot` and `zfs-replicate` services with their timers,
and optionally `zfs-verify` (is the backup there?) and `zfs-scrub-targets` (scrub the targets'
pools); on a backup target with `[receive]`, `zfs-prune-received` (the target thins its copies).

One structure, two renderers: `units()` here feeds `zfsrep systemd render` (unit files for
pip installs on Debian/Ubuntu), and `nixos-modules/units.nix` builds the very same structure for
the NixOS module. `tests/unit/test_systemd_units_parity.py` evaluates the Nix file and compares,
so names, Exec lines and hardening cannot drift apart. Pure: no I/O.

Structure: ``{unit name: {"unit": {...}, "service": {...}, "timer": {...}}}``; each value is a
string or a list of strings (a list renders as one line per item).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from zfsrep.config.credentials import KEPT_ENV
from zfsrep.config.model import Config
from zfsrep.unit_run import RUN_DIR_ENV, RUNS_SUBDIR

SNAPSHOT_UNIT = "zfs-snapshot"
REPLICATE_UNIT = "zfs-replicate"
DEFAULT_SNAPSHOT_ON_CALENDAR = "*:0/15"
DEFAULT_REPLICATE_ON_CALENDAR = "hourly"
VERIFY_UNIT = "zfs-verify"
# Not "zfs-scrub": NixOS' services.zfs.autoScrub (local pools) already defines zfs-scrub.service.
SCRUB_UNIT = "zfs-scrub-targets"
DEFAULT_VERIFY_ON_CALENDAR = "weekly"
DEFAULT_SCRUB_ON_CALENDAR = "monthly"
DEFAULT_RANDOMIZED_DELAY = "5min"
# A target's own pruning: runs as root whatever `user` is (it holds the `destroy` that the sources'
# ssh user never has), so a compromised source cannot destroy its copies.
PRUNE_RECEIVED_UNIT = "zfs-prune-received"
DEFAULT_PRUNE_RECEIVED_ON_CALENDAR = "daily"
# `zfs allow` sets, granted in ExecStartPre and revoked in ExecStopPost when the units run as a
# dedicated user. Disjoint on purpose: one unit's revoke must not pull a permission from under
# the other unit while it runs.
SNAPSHOT_PERMISSIONS = ("snapshot", "destroy", "mount")
REPLICATE_PERMISSIONS = ("send", "hold", "release", "bookmark")
# Where a unit keeps its credentials for its ExecStopPost steps: <lock_dir>/credentials/<unit>
# (zfsrep.systemd_credentials explains why).
KEPT_CREDENTIALS_SUBDIR = "credentials"
# TimeoutStopSec= per on-demand target of a unit. systemd bounds ExecStopPost= by the unit's stop
# timeout (90 s by default) and kills what is still running: a killed teardown leaves the target
# up (an EC2 instance running and billed until `teardown --reap`). One teardown may wait 60 s for
# the target's lock (zfsrep.targets.lifecycle.TEARDOWN_LOCK_WAIT), 60 s for ssh to export the pool,
# then for EC2 to stop the instance and detach the volume (minutes); teardowns run one after the
# other. Each step has its own timeout, so this only bounds a teardown that hangs.
TEARDOWN_STOP_MINUTES = 15

_NEEDS_QUOTES = re.compile(r"[\s\"'\\;]")


def exec_arg(arg: str) -> str:
    """One argument of an Exec= line: specifiers (%) and variables ($) literal, quoted if needed."""
    text = arg.replace("%", "%%").replace("$", "$$")
    if text and not _NEEDS_QUOTES.search(text):
        return text
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def exec_line(argv: list[str], prefix: str = "") -> str:
    return prefix + " ".join(exec_arg(a) for a in argv)


def env_assignment(name: str, value: str) -> str:
    """An Environment= item; specifiers such as %d stay live."""
    text = f"{name}={value}"
    return f'"{text}"' if _NEEDS_QUOTES.search(text) else text


@dataclass(frozen=True)
class UnitInputs:
    """Everything the units depend on. The NixOS module passes the same fields (camelCase)."""

    exe: str  # absolute path of the zfsrep executable
    config_file: str
    user: str = "root"  # "root", or a dedicated user that gets `zfs allow` per run
    group: str | None = None  # default: same as user
    snapshot_on_calendar: str = DEFAULT_SNAPSHOT_ON_CALENDAR
    replicate_on_calendar: str = DEFAULT_REPLICATE_ON_CALENDAR
    verify: bool = False  # zfs-verify.service/.timer: `zfsrep verify` against every target
    verify_on_calendar: str = DEFAULT_VERIFY_ON_CALENDAR
    verify_deep: bool = False  # `zfsrep verify --deep`: also compare files of the newest common snapshot
    scrub_targets: tuple[str, ...] = ()  # zfs-scrub-targets.service/.timer when not empty
    scrub_on_calendar: str = DEFAULT_SCRUB_ON_CALENDAR
    randomized_delay_sec: str = DEFAULT_RANDOMIZED_DELAY  # replicate, verify, scrub, prune-received timers; "0": none
    warmup_targets: tuple[str, ...] = ()  # targets with a warmup: ExecStartPre warmup, ExecStopPost teardown
    report: bool = False  # a report sink is configured: ExecStopPost report-result
    datasets: bool = True  # any dataset configured (the allow step needs one)
    sends: bool = True  # this host is a source: zfs-snapshot and zfs-replicate (False: a pure backup host)
    prune_received: bool = False  # `[receive]` configured: zfs-prune-received.service/.timer
    prune_received_on_calendar: str = DEFAULT_PRUNE_RECEIVED_ON_CALENDAR
    snapshot_permissions: tuple[str, ...] = SNAPSHOT_PERMISSIONS
    replicate_permissions: tuple[str, ...] = REPLICATE_PERMISSIONS
    state_dir: str = "/var/lib/zfsrep"
    lock_dir: str = "/run/zfsrep"
    credentials: dict[str, str] = field(default_factory=dict)  # name -> path on this machine
    environment: dict[str, str] = field(default_factory=dict)

    def nix_args(self) -> dict[str, Any]:
        """The same inputs as `nixos-modules/units.nix` takes them."""
        return {
            "exe": self.exe,
            "configFile": self.config_file,
            "user": self.user,
            "group": self.group or self.user,
            "snapshotOnCalendar": self.snapshot_on_calendar,
            "replicateOnCalendar": self.replicate_on_calendar,
            "verify": self.verify,
            "verifyOnCalendar": self.verify_on_calendar,
            "verifyDeep": self.verify_deep,
            "scrubTargets": list(self.scrub_targets),
            "scrubOnCalendar": self.scrub_on_calendar,
            "randomizedDelaySec": self.randomized_delay_sec,
            "warmupTargets": list(self.warmup_targets),
            "report": self.report,
            "datasets": self.datasets,
            "sends": self.sends,
            "pruneReceived": self.prune_received,
            "pruneReceivedOnCalendar": self.prune_received_on_calendar,
            "snapshotPermissions": list(self.snapshot_permissions),
            "replicatePermissions": list(self.replicate_permissions),
            "stateDir": self.state_dir,
            "lockDir": self.lock_dir,
            "credentials": dict(self.credentials),
            "environment": dict(self.environment),
        }


def inputs_from_config(config: Config, *, exe: str, config_file: str, **options: Any) -> UnitInputs:
    """The unit inputs a config implies: warmup targets, report sinks, state and lock dirs."""
    from zfsrep import sinks  # only `systemd render` needs the registry (and what it loads)

    implied: dict[str, Any] = {
        "warmup_targets": tuple(sorted(n for n, t in config.targets.items() if t.warmup is not None)),
        "report": bool(sinks.configured(config.report)),
        "datasets": bool(config.datasets),
        # a config with only [receive] is a pure backup host: nothing to snapshot or send
        "sends": bool(config.datasets or config.targets or config.receive is None),
        "prune_received": config.receive is not None,
        "state_dir": config.state_dir,
        "lock_dir": config.lock_dir,
    }
    return UnitInputs(exe=exe, config_file=config_file, **{**implied, **options})


def placement_problems(inputs: UnitInputs) -> list[str]:
    """Paths the sandbox would hide from the services: one actionable line each."""
    problems: list[str] = []
    hidden = ["/tmp/", "/var/tmp/"]  # PrivateTmp
    if inputs.user != "root":
        hidden += ["/home/", "/root/", "/run/user/"]  # ProtectHome=yes
    for what, path in (("the config file", inputs.config_file), ("the zfsrep executable", inputs.exe)):
        where = next((h for h in hidden if path.startswith(h)), None)
        if where:
            problems.append(
                f"{what} {path} is under {where}, which the units' sandbox hides "
                f"({'PrivateTmp' if 'tmp' in where else 'ProtectHome'}); move it, e.g. to "
                + ("/etc/zfsrep/config.toml" if what == "the config file" else "a venv in /opt/zfsrep")
            )
    return problems


def hardening(inputs: UnitInputs) -> dict[str, str | list[str]]:
    """Sandboxing shared by both services. Root keeps only CAP_SYS_ADMIN (the zfs ioctls)."""
    root = inputs.user == "root"
    settings: dict[str, str | list[str]] = {
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "PrivateMounts": "yes",
        "ProtectSystem": "strict",
        # root's ssh keys and known_hosts usually live in /root/.ssh: readable, never writable.
        "ProtectHome": "read-only" if root else "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "ProtectProc": "invisible",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "RemoveIPC": "yes",
        "SystemCallArchitectures": "native",
        "SystemCallFilter": ["@system-service"] if root else ["@system-service", "~@privileged @resources"],
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "DevicePolicy": "closed",
        "DeviceAllow": "/dev/zfs rw",
        "CapabilityBoundingSet": "CAP_SYS_ADMIN" if root else "",
        "UMask": "0077",
    }
    return settings


def _directories(inputs: UnitInputs) -> dict[str, str | list[str]]:
    settings: dict[str, str | list[str]] = {}
    writable: list[str] = []
    if inputs.state_dir.startswith("/var/lib/") and inputs.state_dir != "/var/lib/":
        settings["StateDirectory"] = inputs.state_dir.removeprefix("/var/lib/")
        settings["StateDirectoryMode"] = "0750"
    else:
        writable.append(inputs.state_dir)
    if inputs.lock_dir.startswith("/run/") and inputs.lock_dir != "/run/":
        settings["RuntimeDirectory"] = inputs.lock_dir.removeprefix("/run/")
        settings["RuntimeDirectoryMode"] = "0750"
        # both services share it: the one that stops first must not remove it under the other
        settings["RuntimeDirectoryPreserve"] = "yes"
    else:
        writable.append(inputs.lock_dir)
    if writable:
        settings["ReadWritePaths"] = writable
    return settings


def _zfsrep(inputs: UnitInputs, command: str, *options: str, prefix: str = "") -> str:
    return exec_line([inputs.exe, *command.split(), "--config", inputs.config_file, *options], prefix)


def _service(
    inputs: UnitInputs,
    unit: str,
    verb: str,
    permissions: tuple[str, ...],
    warmups: tuple[str, ...],
    start: str | list[str] | None = None,
    *,
    networked: bool = True,
) -> dict[str, Any]:
    """One oneshot service; ``start`` is its ExecStart (default: `zfsrep VERB`). A ``networked``
    unit (it reaches targets) ends with `teardown --this-run`, whatever its warmups are now: a
    switch during a run may have removed the one this run warmed up (`zfsrep.unit_run`)."""

    def zfsrep(command: str, *options: str, prefix: str = "") -> str:
        return _zfsrep(inputs, command, *options, prefix=prefix)

    delegate = inputs.user != "root" and inputs.datasets and bool(permissions)
    perms = ",".join(permissions)
    pre: list[str] = []
    post: list[str] = []
    if delegate:
        # "+": runs with full privileges, outside the sandbox and the User= below.
        pre.append(zfsrep("systemd allow", "--user", inputs.user, "--permissions", perms, prefix="+"))
    # "-": one target's failed warmup must not stop the others; replicate reports that target.
    pre += [zfsrep("warmup", "--target", t, prefix="-") for t in warmups]
    if networked:
        post.append(zfsrep("teardown", "--this-run", prefix="-"))
    if inputs.report:
        post.append(zfsrep("report-result", "--verb", verb, prefix="-"))
    if delegate:
        post.append(zfsrep("systemd unallow", "--user", inputs.user, "--permissions", perms, prefix="-+"))

    # every step of one run reads the config its first step read, and undoes what it recorded
    environment = {"TZ": "UTC", RUN_DIR_ENV: f"{inputs.lock_dir}/{RUNS_SUBDIR}/{unit}", **inputs.environment}
    # systemd hides the credentials from ExecStopPost: keep a copy for teardown and report-result
    if inputs.credentials and post:
        environment[KEPT_ENV] = f"{inputs.lock_dir}/{KEPT_CREDENTIALS_SUBDIR}/{unit}"
        pre.insert(1 if delegate else 0, exec_line([inputs.exe, "systemd", "keep-credentials"], "-"))
        post.append(exec_line([inputs.exe, "systemd", "drop-credentials"], "-"))
    service: dict[str, Any] = {"Type": "oneshot"}
    if inputs.user != "root":
        service["User"] = inputs.user
        service["Group"] = inputs.group or inputs.user
    service["Environment"] = [env_assignment(k, v) for k, v in sorted(environment.items())]
    if pre:
        service["ExecStartPre"] = pre
    service["ExecStart"] = start if start is not None else zfsrep(verb)
    if post:
        service["ExecStopPost"] = post
    if networked:
        service["TimeoutStopSec"] = f"{TEARDOWN_STOP_MINUTES * max(1, len(warmups))}min"
    if inputs.credentials:
        service["LoadCredential"] = [f"{n}:{p}" for n, p in sorted(inputs.credentials.items())]
    service.update(_directories(inputs))
    service.update(hardening(inputs))
    return service


def _networked_timer(inputs: UnitInputs, on_calendar: str) -> dict[str, str]:
    """A timer of a unit that reaches targets: spread over RandomizedDelaySec= so that a fleet of
    sources does not reach one target in the same second (the target's own pruning too: it is
    then less likely to meet them)."""
    timer = {"OnCalendar": on_calendar, "Persistent": "true"}
    if inputs.randomized_delay_sec not in ("", "0"):
        timer["RandomizedDelaySec"] = inputs.randomized_delay_sec
    return timer


def units(inputs: UnitInputs) -> dict[str, dict[str, dict[str, Any]]]:
    structure: dict[str, dict[str, dict[str, Any]]] = {}
    if inputs.sends:
        structure.update(_source_units(inputs))
    if inputs.prune_received:
        as_root = replace(inputs, user="root", group=None)
        structure[PRUNE_RECEIVED_UNIT] = {
            "unit": {
                "Description": "zfsrep: prune the copies this target received, by its own retention",
                "After": ["zfs.target"],
            },
            # local only (no teardown); the same sandbox as zfs-snapshot run as root
            "service": _service(as_root, PRUNE_RECEIVED_UNIT, "prune-received", (), (), networked=False),
            "timer": _networked_timer(inputs, inputs.prune_received_on_calendar),
        }
    return structure


def _source_units(inputs: UnitInputs) -> dict[str, dict[str, dict[str, Any]]]:
    structure = {
        SNAPSHOT_UNIT: {
            "unit": {
                "Description": "zfsrep: take and prune ZFS snapshots",
                "After": ["zfs.target"],
            },
            "service": _service(inputs, SNAPSHOT_UNIT, "snapshot", inputs.snapshot_permissions, (), networked=False),
            "timer": {"OnCalendar": inputs.snapshot_on_calendar, "Persistent": "true"},
        },
        REPLICATE_UNIT: {
            "unit": {
                "Description": "zfsrep: replicate ZFS snapshots to every target",
                "After": ["zfs.target", "network-online.target"],
                "Wants": ["network-online.target"],
            },
            "service": _service(inputs, REPLICATE_UNIT, "replicate", inputs.replicate_permissions, inputs.warmup_targets),
            "timer": _networked_timer(inputs, inputs.replicate_on_calendar),
        },
    }
    if inputs.verify:
        deep = ("--deep",) if inputs.verify_deep else ()
        structure[VERIFY_UNIT] = {
            "unit": {
                "Description": "zfsrep: verify the backups on every target",
                "After": ["zfs.target", "network-online.target"],
                "Wants": ["network-online.target"],
            },
            # verify needs no `zfs allow` permission: it only lists snapshots and reads files
            "service": _service(inputs, VERIFY_UNIT, "verify", (), inputs.warmup_targets, _zfsrep(inputs, "verify", *deep)),
            "timer": _networked_timer(inputs, inputs.verify_on_calendar),
        }
    if inputs.scrub_targets:
        # one ExecStart per target, in order; a failed scrub (errors found, unreachable) fails the unit
        starts = [_zfsrep(inputs, "scrub", "--target", t, "--wait") for t in inputs.scrub_targets]
        warmups = tuple(t for t in inputs.warmup_targets if t in inputs.scrub_targets)
        structure[SCRUB_UNIT] = {
            "unit": {
                "Description": "zfsrep: scrub the pools of the targets",
                "After": ["zfs.target", "network-online.target"],
                "Wants": ["network-online.target"],
            },
            "service": _service(inputs, SCRUB_UNIT, "scrub", (), warmups, starts),
            "timer": _networked_timer(inputs, inputs.scrub_on_calendar),
        }
    return structure


def _section(name: str, values: dict[str, Any]) -> str:
    lines = [f"[{name}]"]
    for key, value in values.items():
        for item in value if isinstance(value, list) else [value]:
            lines.append(f"{key}={item}")
    return "\n".join(lines) + "\n"


def unit_files(structure: dict[str, dict[str, dict[str, Any]]], *, header: str = "") -> dict[str, str]:
    """File name -> text of every .service and .timer file."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    files: dict[str, str] = {}
    for name, parts in structure.items():
        files[f"{name}.service"] = comment + _section("Unit", parts["unit"]) + "\n" + _section("Service", parts["service"])
        timer_unit = {"Description": f"{parts['unit']['Description']} (timer)"}
        files[f"{name}.timer"] = (
            comment + _section("Unit", timer_unit) + "\n" + _section("Timer", parts["timer"]) + "\n"
            + _section("Install", {"WantedBy": "timers.target"})
        )
    return files
