"""A target whose ``warmup`` is ``type = "command"``: up runs ``warmup.command`` locally (a
target without ``host`` is where its output's last line says), then waits for ssh, runs
``remote_command`` and imports the pool; down exports the pool and runs ``teardown_command``.
"""

from __future__ import annotations

import shlex

from zfsrep.config.model import CommandWarmup, Config, TargetConfig
from zfsrep.core.durations import format_duration
from zfsrep.core.result import FAILED, NOTHING_TO_DO, OK, PLANNED, ItemResult
from zfsrep.core.warmup_plan import Step, plan_host
from zfsrep.errors import ZfsrepError
from zfsrep.targets.pool import export_at
from zfsrep.targets.progress import Clocks, Progress, bring_up_host, target_item
from zfsrep.targets.record import DOWN, FAILED as REC_FAILED, UP, WarmupRecord, load_record, mark_down
from zfsrep.targets.user_commands import run_local_command


def up(config: Config, target: TargetConfig, w: CommandWarmup, *, dry_run: bool, clocks: Clocks,
       warnings: list[str]) -> ItemResult:
    steps = [Step("command", f"run locally: {shlex.join(w.command)}")]
    steps += plan_host(target.name, address=target.host, remote_command=w.remote_command, pool=w.pool,
                       known_hosts=target.known_hosts, unknown_address="the address the command prints")
    if dry_run:
        return target_item(target, PLANNED, [s.text for s in steps], kind="command")
    record = WarmupRecord(target=target.name, kind="command", address=target.host, pool=w.pool,
                          warmup_started_at=clocks.wall())
    progress = Progress(record, config.state_dir, warnings)
    progress.save()
    try:
        output = run_local_command(target, w.command, "command")
        progress.note(f"ran locally: {shlex.join(w.command)}")
        if not target.host:
            record.address = printed_address(target, w.command, output)
            progress.note(f"the command printed the address {record.address}", changed=False)
            progress.save()
        bring_up_host(target, record.address or "", pool=w.pool, remote_command=w.remote_command,
                      ssh_timeout=w.ssh_timeout, force_import=False, progress=progress, clocks=clocks)
    except ZfsrepError as e:
        record.status, record.error = REC_FAILED, str(e)
        progress.save()
        return target_item(target, FAILED, progress.done, str(e), kind="command")
    record.status, record.up_at, record.error = UP, clocks.wall(), None
    progress.save()
    return target_item(target, OK, progress.done, kind="command", address=record.address, pool_imported=record.pool_imported)


def down(config: Config, target: TargetConfig, w: CommandWarmup, *, dry_run: bool, clocks: Clocks,
         warnings: list[str]) -> ItemResult:
    record = load_record(config.state_dir, target.name, warnings)
    if record is not None and record.status == DOWN:
        return target_item(target, NOTHING_TO_DO, ["torn down already"], kind="command")
    # a target without host is where its warmup command said it was
    address = target.host or (record.address if record is not None else None)
    steps = []
    if w.pool and address:
        steps.append(Step("export", f"export pool {w.pool} on {address}"))
    if w.teardown_command:
        steps.append(Step("command", f"run locally: {shlex.join(w.teardown_command)}"))
    if dry_run:
        return target_item(target, PLANNED, [s.text for s in steps], kind="command")
    done, errors = [], []
    if w.pool and address:
        note, error = export_at(target, address, w.pool, must=bool(record and record.pool_imported))
        done += [note] if note else []
        errors += [error] if error else []
    if w.teardown_command and not errors:
        try:
            run_local_command(target, w.teardown_command, "teardown_command")
            done.append(f"ran locally: {shlex.join(w.teardown_command)}")
        except ZfsrepError as e:
            errors.append(str(e))
    uptime = _record_uptime(record, clocks.wall())
    if uptime is not None:
        done.append(f"up {format_duration(uptime)}")
    if errors:
        return target_item(target, FAILED, done, "; ".join(errors), kind="command")
    mark_down(config.state_dir, target.name, None, clocks.wall(), warnings)
    return target_item(target, OK if steps else NOTHING_TO_DO, done, kind="command",
                 uptime_seconds=round(uptime) if uptime is not None else None)


def _record_uptime(record: WarmupRecord | None, at: float) -> float | None:
    if record is None or record.status == DOWN:
        return None
    since = record.instance_started_at or record.up_at or record.warmup_started_at
    return at - since if since else None


def printed_address(target: TargetConfig, argv: tuple[str, ...], stdout: str) -> str:
    """The address a command warmup printed: the last non-empty line of its output, one word."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    address = lines[-1] if lines else ""
    if not address or any(ch.isspace() for ch in address) or address.startswith("-"):
        shown = repr(address) if address else "nothing"
        raise ZfsrepError(
            f"target {target.name}: warmup.command `{shlex.join(argv)}` printed {shown} as its last line, "
            f"not an address to ssh to; make it print the address (one word) last, or set targets.{target.name}.host"
        )
    return address
