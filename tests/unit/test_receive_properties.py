"""targets.<name>.properties: names zfs knows and a receive may set, checked when the config
is read (every problem at once, with its dotted path); the encryption properties only on a
full receive that is not raw; a property the target's zfs does not know named as such."""

from __future__ import annotations

import pytest

from tests.unit.getting_back_fakes import CONFIG, config, copy_to, target_zfs
from tests.unit.test_listing_cache import T0, FakeSession, SourceZfs, hourly, replicate_once
from zfsrep.actions import replicate
from zfsrep.config.load import parse_config
from zfsrep.core import receive_properties as props
from zfsrep.errors import CommandError, ConfigError
from zfsrep.pipeline import PipelineResult, StageResult


@pytest.mark.parametrize("name,value", [
    ("canmount", "noauto"), ("mountpoint", "none"), ("mountpoint", "/srv/backup"),
    ("readonly", "on"), ("compression", "zstd-3"), ("compress", "lz4"), ("atime", "off"),
    ("com.example:owner", "ops"), ("userquota@bob", "1G"), ("projectobjquota@7", "100"),
    ("encryption", "on"), ("keyformat", "raw"), ("keylocation", "file:///run/keys/k"),
    ("direct", "always"), ("prefetch", "metadata"), ("sharenfs", "rw=@10.0.0.0/8"),
])
def test_what_a_receive_may_set(name, value):
    assert props.problem(name, value) is None


@pytest.mark.parametrize("name,value,expected", [
    ("canmoutn", "noauto", "not a ZFS property"),
    ("used", "1", "read-only"),
    ("written@s1", "1", "read-only"),
    ("snapshots_changed", "1", "read-only"),
    ("origin", "tank/a@s", "would apply to every copy"),
    ("casesensitivity", "mixed", "takes it from the stream"),
    ("volblocksize", "16k", "takes it from the stream"),
    ("volsize", "1G", "a receive cannot set it"),
    ("Com.Example:x", "1", "lowercase"),
    ("com.example:x", "", "non-empty"),
    ("com.example:x", "a\tb", "without tabs"),
    ("canmount", "yes", "expected one of on, off, noauto"),
    ("readonly", "true", "expected one of on, off"),
    ("mountpoint", "srv", "absolute path"),
])
def test_what_it_may_not(name, value, expected):
    assert expected in (props.problem(name, value) or "")


def test_every_property_problem_at_once_with_its_dotted_path():
    text = CONFIG.format(state="/tmp/x") + (
        'properties = { canmoutn = "noauto", used = "1", readonly = "yes", '
        '"com.example:ok" = "1", CANMOUNT = "on", mountpoint = "none" }\n')
    with pytest.raises(ConfigError) as err:
        parse_config(text, path="/etc/zfsrep/config.toml")
    assert err.value.problems == [
        "targets.offsite.properties.canmoutn: not a ZFS property (did you mean 'canmount'?)",
        "targets.offsite.properties.used: read-only: zfs computes it, a receive cannot set it",
        "targets.offsite.properties.readonly: expected one of on, off, got 'yes'",
        "targets.offsite.properties.CANMOUNT: not a ZFS property "
        "(names are lowercase; a user property has a colon)",
    ]


def test_encryption_properties_go_only_with_a_full_receive_that_is_not_raw():
    configured = {"canmount": "noauto", "encryption": "on", "keyformat": "raw",
                  "keylocation": "file:///k", "pbkdf2iters": "350000"}
    assert props.on_receive(configured, full=True, raw=False) == configured
    assert props.on_receive(configured, full=False, raw=False) == {"canmount": "noauto"}
    assert props.on_receive(configured, full=True, raw=True) == {"canmount": "noauto"}


def test_a_failed_commands_line_is_the_one_before_its_usage_text():
    stderr = ("bad property list: invalid property 'direct'\nusage:\n\tlist [-Hp] ...\n\n"
              "The following properties are supported:\n    SMB SID         (eg: \"S-1-234\")\n")
    assert str(CommandError(["zfs", "list"], 2, stderr, host="b")) == (
        "zfs on b failed: bad property list: invalid property 'direct'")
    assert str(CommandError(["zfs"], 1, "one\ntwo\n")) == "zfs failed: two"


# -- replicate, against fakes of both hosts ---------------------------------------------------

def two_hosts(tmp_path, monkeypatch, properties: str):
    source = SourceZfs(snapshots_changed=True).add("tank", "tank/home")
    target = target_zfs("backup", "backup/h", "backup/h/tank", "backup/h/tank/home")
    target.snapshots_changed = True
    target.datasets["backup/h/tank/home"]["canmount"] = "noauto"
    source.clock = target.clock = T0
    copy_to(target, source.add_snapshot(f"tank/home@{hourly(1)}"), "backup/h/tank/home")
    source.add_snapshot(f"tank/home@{hourly(2)}")
    FakeSession.target, FakeSession.source, FakeSession.events = target, source, []
    monkeypatch.setattr(replicate.connect, "SshSession", FakeSession)
    text = CONFIG.replace("[[datasets]]\nname = \"tank/vm\"\nrecursive = true\n", "")
    return config(tmp_path, text + f"properties = {{{{ {properties} }}}}\n"), source, target


def test_an_incremental_receive_passes_no_encryption_property(tmp_path, monkeypatch):
    """zfs refuses `-o encryption=` (and keyformat, keylocation, pbkdf2iters) on an
    incremental receive; the copy's values differ from the configured ones by nature
    (encryption=on lists as aes-256-gcm), so they must not be passed at all."""
    cfg, source, target = two_hosts(tmp_path, monkeypatch, 'canmount = "noauto", encryption = "on", '
                                    'keyformat = "raw", keylocation = "file:///run/keys/backup"')
    received = []

    def pipeline(stages, **_kw):
        received.append(stages[-1].argv[-1])
        src = next(s for s in source.snaps if s.full_name == f"tank/home@{hourly(2)}")
        copy_to(target, src, "backup/h/tank/home")
        return PipelineResult([StageResult("send", list(stages[0].argv), 0)], 1.0)

    monkeypatch.setattr(replicate.send, "run_pipeline", pipeline)
    result, _, _ = replicate_once(cfg, source, target)
    (item,) = result.items
    assert item.status == "ok", item.error
    assert received == ["zfs receive -u -s backup/h/tank/home"]


def test_a_property_the_targets_zfs_does_not_know_is_named_with_where_it_is_configured(tmp_path, monkeypatch):
    """`direct` is OpenZFS 2.3's; an older target's `zfs list -o …,direct` refuses it (and
    prints its usage after the one line that matters)."""
    cfg, source, target = two_hosts(tmp_path, monkeypatch, 'canmount = "noauto", direct = "always"')
    target.fail_on["name,type,receive_resume_token,canmount,direct,guid,snapshots_changed,origin"] = (
        "bad property list: invalid property 'direct'\nusage:\n\tlist [-Hp] ...\n")
    monkeypatch.setattr(replicate.send, "run_pipeline", lambda *a, **k: pytest.fail("nothing may be sent"))
    result, _, _ = replicate_once(cfg, source, target)
    (item,) = result.items
    assert item.status == "failed"
    assert item.error == ("target offsite (backup.example.org): zfs there does not know the "
                          "property 'direct' (targets.offsite.properties); remove it, or upgrade "
                          "OpenZFS on backup.example.org")
