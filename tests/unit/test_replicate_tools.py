"""`check_tools`: the tools a target's pipeline needs, on this host and on the target."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from zfsrep.actions.replicate import connect
from zfsrep.config.model import TargetConfig
from zfsrep.errors import ZfsrepError


class FakeRemote:
    """A ZfsClient whose runner answers `command -v TOOL` from ``installed``."""

    def __init__(self, installed):
        self.asked = []
        self.runner = self
        self.installed = set(installed)

    def run(self, argv, check=True):
        self.asked.append(argv[-1])
        return SimpleNamespace(ok=argv[-1] in self.installed)


@pytest.fixture(autouse=True)
def everything_here(monkeypatch):
    monkeypatch.setattr(connect.shutil, "which", lambda tool: f"/usr/bin/{tool}")


def target(**kw):
    return TargetConfig(name="b", host="h", dataset="backup/r", **kw)


def test_mbuffer_is_needed_on_the_target_too():
    remote = FakeRemote({"zstd"})
    with pytest.raises(ZfsrepError, match=r"^target b: mbuffer is set but mbuffer is not installed on h; "
                                          r"install it there or unset targets.b.mbuffer$"):
        connect.check_tools(target(compress="zstd", mbuffer="16M"), remote, "h")
    assert remote.asked == ["zstd", "mbuffer"]


def test_a_rate_limit_alone_needs_nothing_on_the_target():
    remote = FakeRemote(set())
    stage = connect.check_tools(target(rate_limit="5M"), remote, "h")
    assert stage.argv[-2:] == ["-r", "5M"] and remote.asked == []


def test_the_compressor_is_needed_on_both_ends(monkeypatch):
    with pytest.raises(ZfsrepError, match=r'compress = "lz4" but lz4 is not installed on h; install it there'):
        connect.check_tools(target(compress="lz4"), FakeRemote(set()), "h")
    monkeypatch.setattr(connect.shutil, "which", lambda tool: None)
    with pytest.raises(ZfsrepError, match=r'compress = "lz4" but lz4 is not installed here \(.*\); install it or set '
                                          r'targets.b.compress = "none"$'):
        connect.check_tools(target(compress="lz4"), FakeRemote({"lz4"}), "h")
