"""`status --live` wiring with canned `zfs list` answers (the real thing: tests/integration/
test_status_lab.py): target paths mapped back to source datasets, snapshots behind, an
unreachable target is UNKNOWN, never warmed up."""

from contextlib import contextmanager

from zfsrep.actions import status
from zfsrep.config.load import parse_config
from zfsrep.core import freshness as fr
from zfsrep.errors import ZfsrepError
from zfsrep.execute import CommandResult, Runner
from zfsrep.zfs.argv import SNAPSHOT_COLUMNS

NOW = 1_800_000_000


class Session:  # what `status` uses of a connection: its runner
    def __init__(self, target, runner):
        self.target, self.runner = target, runner

CONFIG = parse_config('''
[targets.offsite]
host = "backup"
dataset = "backup/web1"
[targets.ec2]
host = "ec2.example.org"
dataset = "vault/web1"
[targets.ec2.warmup]
type = "command"
command = ["false"]
[[datasets]]
name = "tank/home"
''')


class CannedZfs(Runner):
    """Answers `zfs list -t snapshot … ROOTS` from a list of (full name, guid, creation)."""

    def __init__(self, snaps):
        super().__init__()
        self.snaps = snaps

    def run(self, argv, **kw):
        assert argv[:2] == ["zfs", "list"] and ",".join(SNAPSHOT_COLUMNS) in argv
        roots = [a for a in argv[argv.index("createtxg") + 1:] if a not in ("-r", "-d", "1")]
        lines = [f"{name}\t{guid}\t{txg}\t{creation}\t0\t0"
                 for txg, (name, guid, creation) in enumerate(self.snaps, 1)
                 if name.split("@")[0] in roots]
        return CommandResult(tuple(argv), 0, "\n".join(lines) + "\n", "")


def snaps(dataset, *ages):
    return [(f"{dataset}@s{i}", 1000 + i, NOW - age) for i, age in enumerate(ages)]


def test_live_reads_both_sides_and_does_not_wake_an_on_demand_target():
    connected = []

    @contextmanager
    def connect(target):
        connected.append(target.name)
        if target.name == "ec2":
            raise ZfsrepError("target ec2 is not up (no host; it is on-demand): run `zfsrep warmup --target ec2` first")
        yield Session(target, CannedZfs(snaps("backup/web1/tank/home", 30 * 3600, 27 * 3600)))

    local = CannedZfs(snaps("tank/home", 30 * 3600, 27 * 3600, 3600))
    report = status.run(CONFIG, now=NOW, live=True, connect=connect, local=local)
    by_target = {v.observation.target: v for v in report.verdicts}
    offsite, ec2 = by_target["offsite"], by_target["ec2"]
    assert offsite.state == fr.WARNING and offsite.age == 27 * 3600 and offsite.basis == "snapshot"
    assert offsite.observation.newest_target == "s1" and offsite.observation.newest_source == "s2"
    assert offsite.observation.behind == 1
    assert ec2.state == fr.UNKNOWN and "cannot check ec2 live: target ec2 is not up" in ec2.reason
    assert report.exit_code == 3 and sorted(connected) == ["ec2", "offsite"]


def test_live_source_listing_failure_is_unknown_for_every_target():
    class Broken(Runner):
        def run(self, argv, **kw):
            return CommandResult(tuple(argv), 1, "", "cannot open 'tank': pool I/O is currently suspended\n")

    @contextmanager
    def connect(target):
        raise AssertionError("no target is contacted when the source cannot be listed")
        yield

    report = status.run(CONFIG, now=NOW, live=True, connect=connect, local=Broken())
    assert {v.state for v in report.verdicts} == {fr.UNKNOWN}
    assert "pool I/O is currently suspended" in report.verdicts[0].reason
