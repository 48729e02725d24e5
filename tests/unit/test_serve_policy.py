"""`core.serve_policy`: what an append-only target's forced command runs, and what it refuses.

The allowed commands are built by zfsrep's own argv builders (so a change there that serve
would refuse fails here); the refused ones are what an attacker holding the source's key
would try."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.actions.restore import restore_stages
from zfsrep.core import deep_compare
from zfsrep.core.serve_policy import CLOCK_SCRIPT, Plan, Refusal, decide, split_stages
from zfsrep.pipeline import COMPRESSORS, Stage, replication_stages
from zfsrep.zfs import argv as za
from zfsrep.zfs import stream as zs

ROOT = "backup/hosts/web1"
COPY = f"{ROOT}/tank/home"
SNAP = f"{COPY}@zfsrep_daily_2026-01-01T00:00:00Z"


def served(command: str, *, roots=(ROOT,), allow_restore: bool = False) -> Plan:
    plan = decide(command, roots=list(roots), allow_restore=allow_restore)
    assert isinstance(plan, Plan), plan
    return plan


def refused(command: str, *, roots=(ROOT,), allow_restore: bool = False) -> str:
    answer = decide(command, roots=list(roots), allow_restore=allow_restore)
    assert isinstance(answer, Refusal), answer
    return answer.reason


def remote_side(stages: list[Stage], index: int) -> str:
    """The string ssh sends: the last word of the ssh stage."""
    return list(stages[index].argv)[-1]


# -- what zfsrep itself sends -------------------------------------------------------------------

ZFSREP_READS = [
    za.list_tree([ROOT], recursive=True, props=["receive_resume_token", "canmount"])[0],
    za.list_tree([COPY])[0],
    za.list_changed([ROOT], recursive=True, props=["receive_resume_token"])[0],
    za.list_snapshots([COPY, f"{ROOT}/tank/my ds"]),
    za.list_snapshots([ROOT], recursive=True),
    za.list_datasets([COPY], recursive=True, props=["type", "used", "receive_resume_token"]),
    za.get(["guid"], [SNAP]),
    za.get(["type", "mounted", "mountpoint", "keystatus"], [COPY]),
    za.holds([SNAP]),
    ["zfs", "list", "-H", "-p", "-t", "bookmark", "-o", "name,createtxg", "-d", "1", COPY],
    ["zpool", "status", "-p", "-v", "backup"],
    ["zpool", "list", "-H", "-o", "name", "backup"],
    ["sh", "-c", 'command -v "$1"', "sh", "zstd"],
]


@pytest.mark.parametrize("argv", ZFSREP_READS, ids=lambda a: " ".join(a[:4]))
def test_reads_zfsrep_sends_are_served_as_one_exec(argv):
    plan = served(shlex.join(argv))
    assert plan.stages == (tuple(argv),)
    assert plan.what in ("read", "check")


def test_clock_script_is_the_one_list_changed_builds():
    assert za.list_changed([ROOT])[0][2] == CLOCK_SCRIPT


@pytest.mark.parametrize("mbuffer", [None, "16M"])
@pytest.mark.parametrize("compress", ["none", *COMPRESSORS])
@pytest.mark.parametrize("properties", [{}, {"canmount": "noauto"}, {"canmount": "noauto", "com.example:x": "a b"}])
def test_replicate_receive_pipeline_is_served(compress, properties, mbuffer):
    recv = zs.recv_argv(COPY, properties=properties)
    stages = replication_stages(zs.send_argv("tank/home@s"), recv, ssh_prefix=["ssh", "--", "t"],
                                destination="t", compress=compress, receive_buffer=mbuffer)
    plan = served(remote_side(stages, -1))
    assert plan.what == "receive"
    assert plan.stages[-1] == tuple(recv)
    assert len(plan.stages) == 1 + (compress != "none") + (mbuffer is not None)
    assert (plan.stages[0][0] == "mbuffer") == (mbuffer is not None)


def test_receive_abort_and_parents_are_served():
    assert served(shlex.join(zs.recv_abort_argv(COPY))).what == "abort receive"
    assert served(shlex.join(zs.create_placeholder_argv(ROOT, parents=True))).what == "create"
    assert served(shlex.join(zs.create_placeholder_argv(f"{ROOT}/tank"))).what == "create"


def test_holds_of_zfsrep_tags_are_served():
    assert served(shlex.join(za.hold("zfsrep:web1", [SNAP]))).what == "hold"
    assert served(shlex.join(za.release("zfsrep:web1", [SNAP, SNAP]))).what == "release"


def test_mbuffer_before_the_decompressor_is_served():
    plan = served(f"mbuffer -q -s 128k -m 256M -r 20M | zstd -q -d -c | {shlex.join(zs.recv_argv(COPY))}")
    assert [s[0] for s in plan.stages] == ["mbuffer", "zstd", "zfs"]


def test_mbuffer_after_the_decompressor_is_refused():
    assert "not one zfsrep puts" in refused(
        f"zstd -q -d -c | mbuffer -q -s 128k -m 256M | {shlex.join(zs.recv_argv(COPY))}")


RESTORE_SENDS = [
    zs.send_argv(SNAP, progress=True),
    zs.send_argv(SNAP, raw=True, progress=True),
    zs.send_argv(SNAP, base=f"{COPY}@a"),
    zs.send_argv(SNAP, base="@a"),
    zs.resume_send_argv("1-1a2b-3c-789abc", progress=True),
    zs.resume_probe_argv("1-1a2b-3c-789abc"),
    zs.estimate_argv(SNAP, raw=True),
]


@pytest.mark.parametrize("send", RESTORE_SENDS, ids=lambda a: " ".join(a[2:5]))
@pytest.mark.parametrize("compress", ["none", *COMPRESSORS])
def test_restore_sends_are_served_only_with_allow_restore(send, compress):
    stages = restore_stages(send, zs.recv_argv("tank/home"), ssh_prefix=["ssh", "--", "t"], destination="t",
                            compress=compress)
    command = remote_side(stages, 0)
    assert served(command, allow_restore=True).what == "send"
    assert "--allow-restore" in refused(command)


def test_several_roots():
    other = "backup/hosts/db1"
    assert served(shlex.join(za.list_tree([f"{other}/x"])[0]), roots=(ROOT, other))
    assert "outside" in refused(shlex.join(za.list_tree(["backup/hosts/mail"])[0]), roots=(ROOT, other))


# -- what an attacker with the source's key would try ------------------------------------------

ATTACKS = {
    f"zfs destroy -r {ROOT}": "zfs destroy is not served",
    f"zfs destroy {SNAP}": "zfs destroy is not served",
    f"zfs rollback -r {SNAP}": "zfs rollback is not served",
    f"zfs rename {COPY} {ROOT}/x": "zfs rename is not served",
    f"zfs set readonly=off {COPY}": "zfs set is not served",
    f"zfs inherit -r mountpoint {COPY}": "zfs inherit is not served",
    f"zfs promote {COPY}": "zfs promote is not served",
    f"zfs receive -u -s -F {COPY}": "-F is not served",
    f"zfs receive -F -u -s {COPY}": "-F is not served",
    f"zstd -q -d -c | zfs receive -u -s -F {COPY}": "-F is not served",
    f"zfs receive -s {COPY}": "only with -u and -s",
    f"zfs receive -u -s -d {COPY}": "option -d is not served",
    f"zfs receive -u -s -o origin={SNAP} {COPY}": "origin",
    "zfs receive -u -s tank/elsewhere": "outside",
    f"zfs receive -u -s {ROOT}-evil/x": "outside",
    "zfs receive -u -s backup/hosts": "outside",
    f"zfs receive -u -s {ROOT}/../db1": "not a dataset name",
    f"zfs receive -u -s {ROOT}/./x": "not a dataset name",
    f"zfs receive -u -s {ROOT}//x": "not a dataset name",
    "zfs receive -u -s ''": "not a dataset name",
    f"zfs receive -u -s {COPY} {ROOT}/y": "exactly one dataset",
    f"zfs receive -u -s {COPY} -F": "-F is not served",
    "zfs receive -A tank/x": "outside",
    "zfs list": "at least one name",
    "zfs list -r": "at least one name",
    "zfs list -r tank": "outside",
    f"zfs list -r {ROOT}-evil": "outside",
    f"zfs list {COPY}@": "not a snapshot name",
    f"zfs list tank@{ROOT}": "not a snapshot name",
    "zfs list tank@x": "outside",
    f"zfs list '{COPY}#bm'": "not a dataset name",
    f"zfs list '{COPY}@s#bm'": "bookmarks are not served",
    f"zfs list -t snapshot {COPY} -r": "option -r after the names",
    f"zfs list -Hp {COPY}": "option -Hp is not served",
    "zfs get all tank": "outside",
    "zfs holds tank/x@y": "outside",
    f"zfs hold keep {SNAP}": "tags starting 'zfsrep:'",
    "zfs release zfsrep:x tank/a@b": "outside",
    f"zfs create -o canmount=on {COPY}": "property",
    "zfs create tank/x": "zfs create is served only as",
    "zfs list; rm -rf /": "shell syntax ';'",
    f"zfs list {ROOT} && rm -rf /": "shell syntax '&&'",
    f"zfs list {ROOT} || reboot": "shell syntax '||'",
    f"zfs list {ROOT}/$(reboot)": "shell syntax '$('",
    f"zfs list {ROOT}/`reboot`": "shell syntax '`'",
    f"zfs list {ROOT} > /etc/passwd": "shell syntax '>'",
    f"zfs list {ROOT}\nreboot": "shell syntax '\\n'",
    f'zfs list "{ROOT}"': "shell syntax '\"'",
    f"zfs list '{ROOT}'": "not in the form zfsrep sends",
    f"zfs  list {ROOT}": "not in the form zfsrep sends",
    f"zfs list '{ROOT}/$(reboot)'": "not a dataset name",
    f"zfs list {ROOT} | sh": "pipeline is served only as",
    f"zfs list {ROOT} '|' sh": "not in the form zfsrep sends",
    f"cat /etc/shadow | zfs receive -u -s {COPY}": "not one zfsrep puts in a pipeline",
    f"zstd -q -d -c | zstd -q -d -c | zfs receive -u -s {COPY}": "not one zfsrep puts in a pipeline",
    f"zfs receive -u -s {COPY} | sh": "pipeline is served only as",
    "sh -c 'rm -rf /'": "not one serve runs",
    "sh -c 'date +%s && exec \"$@\"' sh rm -rf /": "not one serve runs",
    f"sh -c 'date +%s && exec \"$@\"' sh zfs destroy {COPY}": "not one serve runs",
    "sh -c 'command -v \"$1\"' sh reboot": "not one serve runs",
    shlex.join(["sh", "-c", deep_compare.MANIFEST_SCRIPT, "sh", "/"]): "verify --deep",
    "mount -t zfs -o ro x /mnt": "'mount' is not served",
    "rm -rf /": "'rm' is not served",
    "": "no command",
    "   ": "no command",
    "zpool scrub backup": "zpool scrub is not served",
    "zpool import -N backup": "zpool import is not served",
    "zpool destroy backup": "zpool destroy is not served",
    "zpool status tank": "served only for backup",
    "zpool status": "served only for backup",
    "zfs list 'unbalanced": "cannot be split",
    f"zfs send {SNAP}": "--allow-restore",
    "zfs": "'zfs' is not served",
}


@pytest.mark.parametrize("command", ATTACKS, ids=lambda c: c[:40])
def test_attacks_are_refused_with_a_reason(command):
    assert ATTACKS[command] in refused(command, allow_restore=False)


@pytest.mark.parametrize("command", [
    "zfs send tank/other@s",
    f"zfs send -R {SNAP}",
    f"zfs send -I tank/other@a {SNAP}",
    f"zfs send -t 1-2-3-4 {SNAP}",
    "zfs send -t '1-2-3-4; reboot'",
    f"zfs send {SNAP} | sh",
    f"zfs send {SNAP} {SNAP}",
    f"zfs send -L -c {SNAP} | zstd -q -d -c",
])
def test_restore_sends_stay_under_the_root(command):
    refused(command, allow_restore=True)


def test_bad_roots_refuse_everything():
    assert "no --root" in refused(shlex.join(za.list_tree([ROOT])[0]), roots=())
    assert "--root must name datasets" in refused("zfs list x/y", roots=("x/",))
    assert "--root must name datasets" in refused("zfs list x/y@s", roots=("x/y@s",))


def test_split_stages_round_trips_only_canonical_quoting():
    assert split_stages("a 'b c' | d") == [["a", "b c"], ["d"]]


# -- random input never escapes ----------------------------------------------------------------

FORBIDDEN_VERBS = {"destroy", "rollback", "rename", "set", "inherit", "promote", "allow", "unallow",
                   "send", "upgrade", "program", "change-key", "clone"}
WORDS = st.sampled_from([
    "zfs", "zpool", "sh", "-c", "list", "receive", "recv", "destroy", "send", "hold", "release",
    "create", "get", "holds", "status", "-u", "-s", "-F", "-A", "-o", "-x", "-p", "-r", "-t",
    "-H", "-d", "1", "canmount=off", "canmount=noauto", "zfsrep:x", "|", ";", "&&", "$(", ")",
    "`", "'", '"', "\n", ROOT, COPY, SNAP, f"{ROOT}-evil", f"{ROOT}/..", "tank", "tank/x@y",
    "backup", "zstd", "-q", "-d", "mbuffer", CLOCK_SCRIPT, 'command -v "$1"', "", " ", "@", "#",
])


def _names_in(plan: Plan) -> list[str]:
    return [w for stage in plan.stages for w in stage if "/" in w and not w.startswith("-")]


def _check(plan: Plan | Refusal, allow_restore: bool) -> None:
    if isinstance(plan, Refusal):
        assert plan.reason and "\n" not in plan.reason
        return
    for stage in plan.stages:
        zfs = list(stage[4:]) if stage[:1] == ("sh",) and stage[2] == CLOCK_SCRIPT else list(stage)
        if zfs[:1] == ["zfs"]:
            assert zfs[1] not in FORBIDDEN_VERBS - ({"send"} if allow_restore else set())
            assert "-F" not in zfs
    for name in _names_in(plan):
        dataset = name.split("@")[0].split("=")[-1]
        if name.startswith("canmount="):
            continue
        assert dataset == ROOT or dataset.startswith(ROOT + "/"), name
        assert ".." not in dataset.split("/")


@settings(max_examples=400, deadline=None)
@given(words=st.lists(WORDS, max_size=12), quote=st.booleans(), allow_restore=st.booleans())
def test_random_commands_never_escape_the_root(words, quote, allow_restore):
    command = shlex.join(words) if quote else " ".join(words)
    _check(decide(command, roots=[ROOT], allow_restore=allow_restore), allow_restore)


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=80), allow_restore=st.booleans())
def test_random_text_never_escapes_the_root(text, allow_restore):
    _check(decide(text, roots=[ROOT], allow_restore=allow_restore), allow_restore)
    _check(decide(f"zfs list {text}", roots=[ROOT], allow_restore=allow_restore), allow_restore)
