"""An append-only target on real OpenZFS: the source's key logs in to `target` as a NON-ROOT
user whose `authorized_keys` forces `zfsrep serve --root backup/replica`, and that user holds
`zfs allow create,receive,mount,hold,release` (+ send for restores), never destroy.

Through it, replicate (full, incremental, resume after a kill), verify and restore work as
with root; replicate destroys nothing there although the target's retention would prune. Then
the same key, used by hand as an attacker on the source would, is refused for everything
else (exit 77, one stderr line, a journal entry), and every snapshot on the target is still
there: the GUID list of the whole pool is identical."""

from __future__ import annotations

import json

import pytest

from tests.integration.serve_target import KEY, USER, hourly, sending_config, serve_target
from tests.integration.test_replicate_lab import (
    PARENT,
    SEND_PATTERN,
    assert_same,
    item,
    replicate,
    replicate_and_kill,
    replicate_ok,
    snapshots,
    sums,
    token_of,
    write_config,
    write_files,
)

pytestmark = pytest.mark.lab

DS = "tank/data"
COPY = f"{PARENT}/{DS}"
REFUSED = 77


def as_attacker(lab, command):
    """``command`` through the source's key, by hand: (exit code, stderr)."""
    proc = lab.ssh("source", ["ssh", "-i", KEY, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                              f"{USER}@target", command], check=False)
    return proc.returncode, proc.stderr


def pool_snapshots(lab):
    return lab.ssh("target", "zfs list -H -p -t snapshot -o name,guid -s name -r backup").stdout


def test_replicate_verify_and_restore_through_serve_destroying_nothing(clean_lab):
    lab = clean_lab
    since = lab.ssh("target", "date +%s").stdout.strip()  # the journal may hold earlier tests' refusals
    lab.ssh("source", f"rm -rf /var/lib/zfsrep && zfs create {DS}")
    serve_target(lab, [DS])
    assert lab.ssh("target", f"zfs allow {PARENT}").stdout.count(USER) >= 1

    # full
    write_files(lab, f"/{DS}", 5, 200_000, 1)
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(1)}")
    first = replicate_ok(lab)
    assert item(first, DS)["status"] == "ok" and item(first, DS)["sent"] == [hourly(1)]
    assert any("append-only: it prunes itself" in n for n in item(first, DS)["details"]["notes"])
    assert_same(lab, DS)

    # incremental: the target's retention (all zero) would destroy hourly(1); it stays
    write_files(lab, f"/{DS}", 3, 200_000, 2)
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(2)}")
    second = replicate_ok(lab)
    it = item(second, DS)
    assert it["sent"] == [hourly(2)] and it["destroyed"] == [], it
    assert list(snapshots(lab, "target", COPY)) == [hourly(1), hourly(2)]
    assert_same(lab, DS)

    # resume after a kill: the partial receive (by the unprivileged user) keeps a token
    lab.ssh("source", f"zfs set compression=off {DS} && "
                      f"for i in 1 2; do head -c 50000000 /dev/urandom > /{DS}/blob$i; done")
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(3)}")
    write_config(lab, [DS], target=sending_config(rate_limit="10M"))
    rc, data, killed = replicate_and_kill(lab, SEND_PATTERN, COPY, 20_000_000)
    assert killed and rc == 1, json.dumps(data)[:3000]
    assert token_of(lab, COPY), "an interrupted receive through serve leaves a resume token"
    final = replicate_ok(lab)
    assert item(final, DS)["resumed"] is True and token_of(lab, COPY) is None
    assert_same(lab, DS)

    # verify (GUIDs) through serve
    proc = lab.run_zfsrep(["verify", "--json"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["items"][0]["status"] == "ok"

    # restore (zfs send on the target, allowed by --allow-restore)
    proc = lab.run_zfsrep(["restore", f"{DS}@{hourly(2)}", "--target", "backup", "--to", "tank/restored",
                           "--json"], check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sums(lab, "source", "/tank/restored") == sums(lab, "source", f"/{DS}/.zfs/snapshot/{hourly(2)}")

    # every command above went through serve: the journal has them, none refused
    journal = lab.ssh("target", f"journalctl -q --no-pager -o cat -t zfsrep-serve --since @{since}").stdout
    assert "receive (from" in journal and "send (from" in journal and "refused" not in journal


ATTACKS = [
    f"zfs destroy -r {PARENT}",
    f"zfs destroy {COPY}@{hourly(1)}",
    f"zfs rollback -r {COPY}@{hourly(1)}",
    f"zfs rename {COPY} {PARENT}/gone",
    f"zfs set readonly=off {COPY}",
    "zfs receive -u -s backup/elsewhere",
    f"zfs list -r {PARENT}-evil",
    "zfs list -r backup",
    f"zfs list {PARENT}; rm -rf /home",
    f"zfs list {PARENT}/$(touch /tmp/pwned)",
    f"zfs list '{PARENT}/$(touch /tmp/pwned)'",
    f"zfs list {PARENT}/`touch /tmp/pwned`",
    f"zfs hold keep {COPY}@{hourly(1)}",
    "zpool destroy backup",
    "sh",
    "",
]


def test_the_key_by_hand_is_refused_and_every_snapshot_stays(clean_lab):
    lab = clean_lab
    lab.ssh("source", f"rm -rf /var/lib/zfsrep && zfs create {DS}")
    serve_target(lab, [DS], allow_restore=False)
    lab.ssh("target", "rm -f /tmp/pwned")
    write_files(lab, f"/{DS}", 3, 100_000, 3)
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(1)}")
    write_files(lab, f"/{DS}", 3, 100_000, 4)
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(2)}")
    replicate_ok(lab)
    before = pool_snapshots(lab)
    assert before.count("\n") == 2
    since = lab.ssh("target", "date +%s").stdout.strip()

    for command in ATTACKS:
        code, err = as_attacker(lab, command)
        assert code == REFUSED, (command, code, err)
        lines = [ln for ln in err.splitlines() if ln.startswith("zfsrep serve: refused: ")]
        assert len(lines) == 1, (command, err)

    # `zfs receive -F` of a stream that would roll the copy back to hourly(1) and wipe hourly(2)
    lab.ssh("source", f"zfs snapshot {DS}@alt")
    proc = lab.ssh("source", ["bash", "-c", f"""
zfs send -i {DS}@{hourly(1)} {DS}@alt | ssh -i {KEY} -o IdentitiesOnly=yes -o BatchMode=yes {USER}@target \
    zfs receive -u -s -F {COPY}; echo "ssh=${{PIPESTATUS[1]}}" >&2
"""], check=False)
    assert f"ssh={REFUSED}" in proc.stderr and "zfs receive -F is not served" in proc.stderr, proc.stderr
    # send without --allow-restore
    code, err = as_attacker(lab, f"zfs send {COPY}@{hourly(1)}")
    assert code == REFUSED and "--allow-restore" in err

    assert pool_snapshots(lab) == before
    assert lab.ssh("target", "test -e /tmp/pwned", check=False).returncode != 0
    assert lab.ssh("target", "test -d /home", check=False).returncode == 0
    journal = lab.ssh("target", f"journalctl -q --no-pager -o cat -t zfsrep-serve --since @{since}").stdout
    assert journal.count("zfsrep serve: refused: ") >= len(ATTACKS) + 2, journal
    assert "zfs destroy is not served" in journal

    # and replication still works afterwards
    lab.ssh("source", f"zfs destroy {DS}@alt")
    write_files(lab, f"/{DS}", 2, 100_000, 5)
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(3)}")
    code, data, err = replicate(lab)
    assert code == 0, err
    assert list(snapshots(lab, "target", COPY)) == [hourly(1), hourly(2), hourly(3)]
