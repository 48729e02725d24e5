"""What a unit's run started with (`zfsrep.unit_run`): the config its first step read, the
targets it warmed up, the permissions it granted — so a `nixos-rebuild switch` during the run
(new config, new unit file: systemd runs the new unit's ExecStopPost) undoes exactly what the run
did. The whole switch in real systemd: tests/integration/test_systemd_lab.py."""

from __future__ import annotations

from pathlib import Path

from zfsrep import unit_run
from zfsrep.actions import delegation
from zfsrep.config.load import parse_config
from zfsrep.execute import CommandResult


def _env(tmp_path: Path, invocation: str = "run-1") -> dict[str, str]:
    return {unit_run.RUN_DIR_ENV: str(tmp_path / "runs" / "zfs-replicate"), "INVOCATION_ID": invocation}


def test_every_step_of_a_run_reads_the_config_its_first_step_read(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("# generation 1\n")
    env, warnings = _env(tmp_path), []
    first = unit_run.config_for_run(config, warnings, env)
    config.write_text("# generation 2\n")  # the switch
    later = unit_run.config_for_run(config, warnings, env)
    assert first == later != config and later.read_text() == "# generation 1\n" and warnings == []
    # the next run of the unit reads the new generation
    assert unit_run.config_for_run(config, warnings, _env(tmp_path, "run-2")).read_text() == "# generation 2\n"


def test_outside_a_unit_nothing_is_pinned(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("x = 1\n")
    assert unit_run.config_for_run(config, [], {"INVOCATION_ID": "i"}) == config
    assert unit_run.config_for_run(config, [], {unit_run.RUN_DIR_ENV: str(tmp_path / "r")}) == config
    assert unit_run.note_warmed("t", {}) is None and unit_run.warmed_targets({}) == []


def test_a_run_dir_that_cannot_be_written_warns_and_reads_the_given_file(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("x = 1\n")
    (tmp_path / "runs").write_text("a file, not a directory")
    warnings: list[str] = []
    assert unit_run.config_for_run(config, warnings, _env(tmp_path)) == config
    assert len(warnings) == 1 and warnings[0].startswith(f"cannot keep this run's config in {tmp_path / 'runs'}")


def test_the_targets_a_run_warmed_are_its_own_and_in_order(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text("x = 1\n")
    env = _env(tmp_path)
    unit_run.config_for_run(config, [], env)
    assert unit_run.note_warmed("cold", env) is None
    assert unit_run.note_warmed("offsite", env) is None and unit_run.note_warmed("cold", env) is None
    assert unit_run.warmed_targets(env) == ["cold", "offsite"]
    # a later run starts with none
    unit_run.config_for_run(config, [], _env(tmp_path, "run-2"))
    assert unit_run.warmed_targets(_env(tmp_path, "run-2")) == []
    assert unit_run.warmed_targets(env) == []


class _Zfs:
    def __init__(self, gone: set[str] = frozenset()):
        self.calls: list[list[str]] = []
        self.gone = gone

    def run(self, argv, **_):
        self.calls.append(list(argv))
        if argv[-1] in self.gone:
            from zfsrep.errors import CommandError
            raise CommandError(list(argv), 1, f"cannot open '{argv[-1]}': dataset does not exist\n")
        return CommandResult(argv=tuple(argv), returncode=0, stdout="", stderr="")


def test_unallow_revokes_what_the_run_granted_although_the_config_changed(tmp_path):
    env = _env(tmp_path)
    granted = unit_run.Grant("zfsrep", ("send", "hold"), ("tank/a", "tank/b"))
    assert unit_run.note_grant(granted, env) is None
    assert unit_run.recorded_grants(env) == [granted]
    # the switch dropped tank/b (and it was destroyed since) and added tank/c
    config = parse_config('[[datasets]]\nname = "tank/a"\n[[datasets]]\nname = "tank/c"\n')
    zfs = _Zfs(gone={"tank/b"})
    result = delegation.run(config, user="zfsrep", permissions=("send", "hold"), revoke=True, runner=zfs,
                            also=unit_run.recorded_grants(env))
    assert [c[-1] for c in zfs.calls] == ["tank/a", "tank/c", "tank/b"]
    assert all(c[:4] == ["zfs", "unallow", "-u", "zfsrep"] for c in zfs.calls)
    assert result.exit_code == 0
    unit_run.forget_grants(env)
    assert unit_run.recorded_grants(env) == []


def test_a_failed_revoke_of_a_recorded_grant_names_that_grants_user():
    class NoSuchUser(_Zfs):
        def run(self, argv, *, check=True, **kw):
            if argv[3] == "olduser":
                from zfsrep.errors import CommandError
                raise CommandError(list(argv), 1, "invalid user 'olduser'\n")
            return super().run(argv, check=check, **kw)

    config = parse_config('[[datasets]]\nname = "tank/a"\n')
    result = delegation.run(config, user="zfsrep", permissions=("send",), revoke=True, runner=NoSuchUser(gone=set()),
                            also=[unit_run.Grant("olduser", ("send",), ("tank/a",))])
    (failed,) = [i for i in result.items if i.error]
    assert failed.error == "zfs unallow on tank/a failed: invalid user 'olduser'; check that user 'olduser' exists"


def test_teardown_this_run_with_no_warmed_target_says_so_stores_nothing_and_exits_0(tmp_path):
    import json

    from typer.testing import CliRunner

    from zfsrep.cli import app

    config = tmp_path / "config.toml"
    config.write_text(f'state_dir = "{tmp_path / "state"}"\n[[datasets]]\nname = "tank/a"\n')
    env = _env(tmp_path)  # a run that warmed nothing up
    text = CliRunner().invoke(app, ["teardown", "-c", str(config), "--this-run"], env=env)
    assert text.exit_code == 0 and text.stdout == "teardown: this run warmed up no target\n"
    document = CliRunner().invoke(app, ["teardown", "-c", str(config), "--this-run", "--json"], env=env)
    data = json.loads(document.stdout)
    assert document.exit_code == 0 and data["exit_code"] == 0
    assert (data["verb"], data["items"], data["note"]) == ("teardown", [], "this run warmed up no target")
    assert not (tmp_path / "state" / "last-teardown.json").exists()
