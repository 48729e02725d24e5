"""`zfsrep systemd render|allow|unallow`: the NixOS module's units for any systemd host."""

from __future__ import annotations

import os
import re
import shutil
import sysconfig
from pathlib import Path
from typing import Annotated

import typer

from zfsrep import systemd_credentials, unit_run
from zfsrep.actions import delegation
from zfsrep.cli.common import (
    ConfigOption,
    DryRunOption,
    JsonOption,
    fail,
    finish,
    guarded,
    load,
    print_json,
    usage_error,
    warn,
)
from zfsrep.config.credentials import KEPT_ENV
from zfsrep.config.load import config_path
from zfsrep.core.result import RunResult
from zfsrep.errors import EXIT_FAILED
from zfsrep.systemd import (
    DEFAULT_PRUNE_RECEIVED_ON_CALENDAR,
    DEFAULT_RANDOMIZED_DELAY,
    DEFAULT_REPLICATE_ON_CALENDAR,
    DEFAULT_SCRUB_ON_CALENDAR,
    DEFAULT_SNAPSHOT_ON_CALENDAR,
    DEFAULT_VERIFY_ON_CALENDAR,
    REPLICATE_PERMISSIONS,
    SNAPSHOT_PERMISSIONS,
    inputs_from_config,
    placement_problems,
    unit_files,
    units,
)
from zfsrep.targets.select import check_targets

app = typer.Typer(no_args_is_help=True, help="systemd units and timers for hosts without NixOS.")

_CREDENTIAL_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def _zfsrep_executable(explicit: str | None) -> str:
    if explicit:
        if not Path(explicit).is_absolute():
            usage_error(f"--exe {explicit!r}: systemd needs an absolute path")
        return explicit
    scripts = Path(sysconfig.get_path("scripts")) / "zfsrep"
    if scripts.exists():
        return str(scripts)
    found = shutil.which("zfsrep")
    if not found:
        usage_error("cannot find the zfsrep executable; pass --exe /path/to/zfsrep")
    return str(Path(found).absolute())


def _credentials(values: list[str]) -> dict[str, str]:
    credentials: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or not _CREDENTIAL_NAME.match(name) or not path.startswith("/") or re.search(r"\s", path):
            usage_error(
                f"--credential {value!r}: expected NAME=/absolute/path (no spaces), "
                "e.g. honeycomb-key=/etc/zfsrep/secrets/honeycomb-key"
            )
        credentials[name] = path
    return credentials


@app.command()
def render(
    config: ConfigOption = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write the unit files here (e.g. /etc/systemd/system); default: print them.")] = None,
    user: Annotated[str, typer.Option("--user", help="Run as root, or as this system user with `zfs allow` granted per run.")] = "root",
    snapshot_on_calendar: Annotated[str, typer.Option("--snapshot-on-calendar", help="OnCalendar= of zfs-snapshot.timer.")] = DEFAULT_SNAPSHOT_ON_CALENDAR,
    replicate_on_calendar: Annotated[str, typer.Option("--replicate-on-calendar", help="OnCalendar= of zfs-replicate.timer.")] = DEFAULT_REPLICATE_ON_CALENDAR,
    verify: Annotated[bool, typer.Option("--verify", help="Also zfs-verify.service/.timer: `zfsrep verify` against every target.")] = False,
    verify_deep: Annotated[bool, typer.Option("--verify-deep", help="zfs-verify runs `zfsrep verify --deep` (implies --verify).")] = False,
    verify_on_calendar: Annotated[str, typer.Option("--verify-on-calendar", help="OnCalendar= of zfs-verify.timer.")] = DEFAULT_VERIFY_ON_CALENDAR,
    scrub: Annotated[bool, typer.Option("--scrub", help="Also zfs-scrub-targets.service/.timer: `zfsrep scrub --wait` of every target's pool.")] = False,
    scrub_target: Annotated[list[str] | None, typer.Option("--scrub-target", help="Scrub only this target's pool (repeatable; implies --scrub).")] = None,
    scrub_on_calendar: Annotated[str, typer.Option("--scrub-on-calendar", help="OnCalendar= of zfs-scrub-targets.timer.")] = DEFAULT_SCRUB_ON_CALENDAR,
    prune_received_on_calendar: Annotated[str, typer.Option("--prune-received-on-calendar", help="OnCalendar= of zfs-prune-received.timer (a config with \\[receive]).")] = DEFAULT_PRUNE_RECEIVED_ON_CALENDAR,
    randomized_delay: Annotated[str, typer.Option("--randomized-delay", help="RandomizedDelaySec= of the replicate, verify, scrub and prune-received timers (\"0\": none), so a fleet does not reach a target at once.")] = DEFAULT_RANDOMIZED_DELAY,
    credential: Annotated[list[str] | None, typer.Option("--credential", help="LoadCredential NAME=PATH (repeatable); the config reads it as \"%d/NAME\".")] = None,
    exe: Annotated[str | None, typer.Option("--exe", help="Absolute path of zfsrep \\[default: this installation's].")] = None,
    json: JsonOption = False,
) -> None:
    """Render zfs-snapshot and zfs-replicate (and zfs-verify, zfs-scrub-targets) services and timers;
    with [receive], zfs-prune-received (alone for a config with only [receive])."""
    cfg = load(config)
    scrub_targets = _scrub_targets(cfg, scrub, scrub_target or [])
    config_file = str(config_path(config).absolute())
    inputs = inputs_from_config(
        cfg,
        exe=_zfsrep_executable(exe),
        config_file=config_file,
        user=user,
        snapshot_on_calendar=snapshot_on_calendar,
        replicate_on_calendar=replicate_on_calendar,
        verify=verify or verify_deep,
        verify_deep=verify_deep,
        verify_on_calendar=verify_on_calendar,
        scrub_targets=scrub_targets,
        scrub_on_calendar=scrub_on_calendar,
        prune_received_on_calendar=prune_received_on_calendar,
        randomized_delay_sec=randomized_delay,
        credentials=_credentials(credential or []),
    )
    problems = placement_problems(inputs)
    if problems:
        usage_error("; ".join(problems))
    structure = units(inputs)
    header = (
        f"Generated by `zfsrep systemd render` from {config_file}.\n"
        "Render again after adding a target with a warmup or a report sink; edit with `systemctl edit`."
    )
    files = unit_files(structure, header=header)
    if out is None:
        if json:
            print_json(structure)
            return
        for name, text in files.items():
            typer.echo(f"### {name}\n{text}")
        return
    try:
        out.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (out / name).write_text(text)
    except OSError as e:
        fail(f"cannot write the unit files to {out}: {e.strerror}; choose another --out", EXIT_FAILED)
    if json:
        print_json({"written": [str(out / n) for n in files]})
        return
    for name in files:
        typer.echo(f"wrote {out / name}")
    if user != "root" and inputs.sends:
        typer.echo(f"the units run as {user!r}: create it first, e.g. `useradd --system --home-dir {cfg.state_dir} {user}`")
    timers = " ".join(f"{name}.timer" for name in structure)
    typer.echo(f"next: systemctl daemon-reload && systemctl enable --now {timers}")


def _scrub_targets(cfg, every: bool, named: list[str]) -> tuple[str, ...]:
    guarded(lambda: check_targets(cfg, named, option="--scrub-target"))
    if named:
        return tuple(dict.fromkeys(named))
    if every and not cfg.targets:
        usage_error(f"--scrub: {cfg.path} has no targets to scrub; add [targets.<name>]")
    return tuple(cfg.targets) if every else ()


def _delegate(config, user: str, permissions: str, revoke: bool, dry_run: bool, json: bool) -> None:
    # these run as root ("+"): they read the config as it is, never the run's pinned copy
    cfg = load(config, pin=False)
    perms = guarded(lambda: delegation.parse_permissions(permissions))
    grant = unit_run.Grant(user, perms, tuple(d.name for d in cfg.datasets))
    if not revoke and not dry_run:
        # recorded before granting: a switch during the run cannot make unallow forget it
        note = unit_run.note_grant(grant)
        if note:
            warn(note)
    recorded = unit_run.recorded_grants() if revoke else []
    # delegation.run revokes each (user, permissions, dataset) once, the current grant's included
    result = guarded(lambda: delegation.run(cfg, user=user, permissions=perms, revoke=revoke, dry_run=dry_run,
                                            also=recorded))
    if revoke and not dry_run and result.exit_code == 0:
        unit_run.forget_grants()
    finish(result, json=json, render=_render_delegation)


def _render_delegation(result: RunResult) -> None:
    """Prints itself: failures go to stderr."""
    for item in result.items:
        argv = " ".join(item.details.get("argv", []))
        typer.echo(f"{item.status}: {argv}" if not item.error else f"zfsrep: {item.error}", err=bool(item.error))
    for error in result.errors:
        typer.echo(f"zfsrep: {error}", err=True)


UserOption = Annotated[str, typer.Option("--user", help="The system user the units run as.")]
PermissionsOption = Annotated[str, typer.Option("--permissions", help="Comma-separated zfs permissions.")]
ALL_PERMISSIONS = ",".join(SNAPSHOT_PERMISSIONS + REPLICATE_PERMISSIONS)


@app.command()
def allow(user: UserOption, permissions: PermissionsOption = ALL_PERMISSIONS, config: ConfigOption = None,
          dry_run: DryRunOption = False, json: JsonOption = False) -> None:
    """`zfs allow` the user these permissions on every configured dataset (ExecStartPre)."""
    _delegate(config, user, permissions, False, dry_run, json)


@app.command()
def unallow(user: UserOption, permissions: PermissionsOption = ALL_PERMISSIONS, config: ConfigOption = None,
            dry_run: DryRunOption = False, json: JsonOption = False) -> None:
    """`zfs unallow` what `allow` granted (ExecStopPost; runs after failures too)."""
    _delegate(config, user, permissions, True, dry_run, json)

@app.command("keep-credentials")
def keep_credentials() -> None:
    """Copy $CREDENTIALS_DIRECTORY to $ZFSREP_KEPT_CREDENTIALS for the unit's ExecStopPost steps (ExecStartPre)."""
    names = guarded(lambda: systemd_credentials.keep(os.environ.get("CREDENTIALS_DIRECTORY"), os.environ.get(KEPT_ENV)))
    typer.echo(f"kept {len(names)} credential(s) for the stop phase in {os.environ[KEPT_ENV]}: {', '.join(names)}")


@app.command("drop-credentials")
def drop_credentials() -> None:
    """Remove what keep-credentials copied (the unit's last ExecStopPost)."""
    if guarded(lambda: systemd_credentials.drop(os.environ.get(KEPT_ENV))):
        typer.echo(f"removed {os.environ[KEPT_ENV]}")


def main() -> None:  # the `zfsrep-systemd` console script
    app(prog_name="zfsrep-systemd")
