"""What a systemd unit's run started with, kept for the rest of that run.

A `nixos-rebuild switch` (or `zfsrep systemd render` plus `daemon-reload`) during a run changes
/etc/zfsrep/config.toml and the unit file under it; systemd then takes the run's remaining
ExecStart=/ExecStopPost= lines from the *new* unit (measured on systemd 252). Undoing what the run
did must not depend on either, or a switch leaves a `zfs allow` or a running EC2 target behind.
So, in a unit (zfsrep's units set ``$ZFSREP_RUN_DIR`` = ``<lock_dir>/runs/<unit>``, and systemd
gives every step of one run the same ``$INVOCATION_ID``):

- the config: the first step of a run that reads the config copies it to
  ``<run dir>/config.toml``; every later step of the same run reads that copy (`config_for_run`);
- the targets warmed up: `warmup` notes each target before touching it, and the unit's single
  ``teardown --this-run`` tears down exactly those, with the pinned config (`note_warmed`,
  `warmed_targets`);
- the permissions granted: `systemd allow` (as root) records user, permissions and datasets in
  ``<lock_dir>/grants/<unit>.json``, and `systemd unallow` revokes those as well as what
  the current config names (`note_grant`, `recorded_grants`, `forget_grants`).

Outside such a unit (no ``$ZFSREP_RUN_DIR`` or no ``$INVOCATION_ID``) nothing is pinned or noted.
Bookkeeping that cannot be written falls back to today's behaviour with a warning; it never
fails a run.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RUN_DIR_ENV = "ZFSREP_RUN_DIR"
RUNS_SUBDIR = "runs"
GRANTS_SUBDIR = "grants"
CONFIG_NAME = "config.toml"
INVOCATION_NAME = "invocation"
WARMED_NAME = "warmed.json"


@dataclass(frozen=True)
class RunDir:
    path: Path
    invocation: str

    @property
    def config(self) -> Path:
        return self.path / CONFIG_NAME

    def current(self) -> bool:
        """Whether the files here belong to this run (and not to an earlier one of the unit)."""
        try:
            return (self.path / INVOCATION_NAME).read_text().strip() == self.invocation
        except OSError:
            return False

    @property
    def grants(self) -> Path:
        """``<lock_dir>/grants/<unit>.json``: written by root, so not in the runs dir, which the
        unit's user must be able to create."""
        return self.path.parent.parent / GRANTS_SUBDIR / f"{self.path.name}.json"


def run_dir(env: Mapping[str, str] | None = None) -> RunDir | None:
    env = os.environ if env is None else env
    path, invocation = env.get(RUN_DIR_ENV), env.get("INVOCATION_ID")
    if not path or not invocation:
        return None
    return RunDir(Path(path), invocation)


def _write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def config_for_run(given: Path, warnings: list[str], env: Mapping[str, str] | None = None) -> Path:
    """The config this step reads: the copy its run pinned, else ``given`` (pinned now when this
    is the run's first step to read it)."""
    run = run_dir(env)
    if run is None:
        return given
    if run.current() and run.config.is_file():
        return run.config
    try:
        text = given.read_bytes()
    except OSError:
        return given  # load_config says what is wrong with it
    try:
        run.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        (run.path / INVOCATION_NAME).unlink(missing_ok=True)
        (run.path / WARMED_NAME).unlink(missing_ok=True)
        _write(run.config, text)
        _write(run.path / INVOCATION_NAME, run.invocation.encode() + b"\n")
    except OSError as e:
        warnings.append(
            f"cannot keep this run's config in {run.path}: {e.strerror}; its later steps read {given} "
            "as it is then (a switch during the run may change what they undo)"
        )
        return given
    return run.config


def note_warmed(target: str, env: Mapping[str, str] | None = None) -> str | None:
    """Note that this run is warming ``target`` up; a warning line if that cannot be kept."""
    run = run_dir(env)
    if run is None:
        return None
    try:
        if not run.current():
            raise OSError(0, "the run's config was not kept there")
        warmed = warmed_targets(env)
        if target not in warmed:
            _write(run.path / WARMED_NAME, json.dumps(warmed + [target]).encode())
    except OSError as e:
        return (f"cannot note in {run.path} that this run warms up target {target}: {e.strerror}; "
                f"the unit's `teardown --this-run` will not know (run `zfsrep teardown --target {target}`)")
    return None


def warmed_targets(env: Mapping[str, str] | None = None) -> list[str]:
    """The targets this run's warmups noted, in order."""
    run = run_dir(env)
    if run is None or not run.current():
        return []
    try:
        data = json.loads((run.path / WARMED_NAME).read_text())
    except (OSError, ValueError):
        return []
    return [t for t in data if isinstance(t, str)] if isinstance(data, list) else []


@dataclass(frozen=True)
class Grant:
    user: str
    permissions: tuple[str, ...]
    datasets: tuple[str, ...]


def note_grant(grant: Grant, env: Mapping[str, str] | None = None) -> str | None:
    """Record what `systemd allow` grants (before granting it); a warning line if it cannot."""
    run = run_dir(env)
    if run is None:
        return None
    grants = recorded_grants(env)
    if grant not in grants:
        grants.append(grant)
    try:
        run.grants.parent.mkdir(parents=True, exist_ok=True)
        _write(run.grants, json.dumps([g.__dict__ for g in grants], default=list).encode())
    except OSError as e:
        return (f"cannot record the granted permissions in {run.grants}: {e.strerror}; unallow revokes "
                "what the config names when it runs")
    return None


def recorded_grants(env: Mapping[str, str] | None = None) -> list[Grant]:
    """What `systemd allow` recorded for this unit (from any run: revoking is always safe)."""
    run = run_dir(env)
    if run is None:
        return []
    try:
        data = json.loads(run.grants.read_text())
    except (OSError, ValueError):
        return []
    grants = []
    for item in data if isinstance(data, list) else []:
        try:
            grants.append(Grant(str(item["user"]), tuple(item["permissions"]), tuple(item["datasets"])))
        except (KeyError, TypeError):
            continue
    return grants


def forget_grants(env: Mapping[str, str] | None = None) -> None:
    run = run_dir(env)
    if run is not None:
        run.grants.unlink(missing_ok=True)
