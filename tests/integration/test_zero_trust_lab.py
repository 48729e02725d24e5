"""Zero trust on real OpenZFS: an encrypted dataset replicated raw (`targets.<n>.raw`, the
default: `zfs send -w`) through the append-only target (`zfsrep serve`, a non-root user, see
tests/integration/serve_target.py). The target never holds the key: its copy stays locked
(`keystatus=unavailable`, its own encryption root, nothing on the target knows the passphrase,
it cannot be mounted), `verify` still compares GUIDs, and `restore` brings it back raw to the
source, where the original key unlocks it and every file's sha256 matches."""

from __future__ import annotations

import json

import pytest

from tests.integration.serve_target import hourly, serve_target
from tests.integration.test_replicate_lab import (
    PARENT,
    item,
    mountpoint,
    replicate_ok,
    snapshots,
    sums,
    write_files,
)

pytestmark = pytest.mark.lab

DS = "tank/secret"
COPY = f"{PARENT}/{DS}"
PASSFILE = "/root/zfsrep-secret.pass"
RESTORED = "tank/secret-restored"
CRYPT = ["encryption", "encryptionroot", "keyformat", "keystatus"]


def encrypted_source(lab):
    """``DS`` on source, encrypted with a passphrase read from ``PASSFILE``; the passphrase."""
    lab.ssh("source", ["sh", "-c", """
set -e
rm -rf /var/lib/zfsrep
umask 077; head -c 30 /dev/urandom | base64 > "$1"
zfs create -o encryption=on -o keyformat=passphrase -o keylocation="file://$1" "$2"
""", "enc", PASSFILE, DS])
    return lab.ssh("source", ["cat", PASSFILE]).stdout.strip()


def props(lab, host, dataset, names):
    out = lab.ssh(host, ["zfs", "get", "-H", "-o", "property,value", ",".join(names), dataset]).stdout
    return dict(line.split("\t", 1) for line in out.splitlines())


def test_the_target_never_holds_the_key(clean_lab):
    lab = clean_lab
    passphrase = encrypted_source(lab)
    serve_target(lab, [DS])  # raw is the default
    since = lab.ssh("target", "date +%s").stdout.strip()

    # full, then incremental, both raw through serve
    write_files(lab, f"/{DS}", 4, 200_000, 1)
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(1)}")
    assert item(replicate_ok(lab), DS)["sent"] == [hourly(1)]
    write_files(lab, f"/{DS}", 3, 200_000, 2)
    lab.ssh("source", f"zfs snapshot {DS}@{hourly(2)}")
    assert item(replicate_ok(lab), DS)["sent"] == [hourly(2)]
    source_snaps = snapshots(lab, "source", DS)
    assert list(snapshots(lab, "target", COPY).items()) == list(source_snaps.items())

    # the copy is locked, is its own encryption root, and nothing on the target knows the key
    assert props(lab, "source", DS, CRYPT)["keystatus"] == "available"
    got = props(lab, "target", COPY, CRYPT)
    assert got == {"encryption": props(lab, "source", DS, ["encryption"])["encryption"],
                   "encryptionroot": COPY, "keyformat": "passphrase", "keystatus": "unavailable"}, got
    assert lab.ssh("target", f"test -e {PASSFILE}", check=False).returncode != 0
    found = lab.ssh("target", ["grep", "-rlsF", "-D", "skip", "--", passphrase,
                               "/root", "/home", "/etc", "/tmp", "/var/lib"], check=False)
    assert found.stdout == "", found.stdout
    mounted = lab.ssh("target", ["zfs", "mount", COPY], check=False)
    assert mounted.returncode != 0 and "key" in mounted.stderr, mounted.stderr
    read = lab.ssh("target", ["sh", "-c", 'd=$(mktemp -d) && mount -t zfs -o ro "$1" "$d"; rc=$?; '
                              'umount "$d" 2>/dev/null; rmdir "$d"; exit $rc', "m", f"{COPY}@{hourly(1)}"],
                   check=False)
    assert read.returncode != 0, "a snapshot of the locked copy must not be readable on the target"

    # verify compares GUIDs through serve
    proc = lab.run_zfsrep(["verify", "--json"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["items"][0]["status"] == "ok"

    # restore: a raw send from the target, received under a new name on the source
    proc = lab.run_zfsrep(["restore", f"{DS}@{hourly(2)}", "--target", "backup", "--to", RESTORED,
                           "--json"], check=False, timeout=900)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    restored = json.loads(proc.stdout)["items"][0]
    assert restored["details"]["mounted"] is False, restored
    assert any(f"zfs load-key {RESTORED}" in n for n in restored["details"]["notes"]), restored
    assert props(lab, "source", RESTORED, ["encryptionroot", "keystatus"]) == {
        "encryptionroot": RESTORED, "keystatus": "unavailable"}
    assert snapshots(lab, "source", RESTORED)[hourly(2)] == source_snaps[hourly(2)]
    lab.ssh("source", ["zfs", "load-key", "-L", f"file://{PASSFILE}", RESTORED])
    lab.ssh("source", ["zfs", "mount", RESTORED])
    want = sums(lab, "source", f"/{DS}/.zfs/snapshot/{hourly(2)}")
    assert len(want) == 7 and sums(lab, "source", mountpoint(lab, "source", RESTORED)) == want

    # all of it went through serve, raw, nothing refused; the target still holds no key
    journal = lab.ssh("target", f"journalctl -q --no-pager -o cat -t zfsrep-serve --since @{since}").stdout
    assert f"zfs send -L -c -w -v -P {COPY}@{hourly(2)}" in journal, journal
    assert "receive (from" in journal and "refused" not in journal, journal
    assert props(lab, "target", COPY, ["keystatus"]) == {"keystatus": "unavailable"}

    # verify --deep cannot read the locked copy: it says so and checks GUIDs only
    proc = lab.run_zfsrep(["verify", "--deep", "--json"], check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    deep = json.loads(proc.stdout)["items"][0]["details"]["deep"]
    assert deep["checked"] is False and "key is not loaded there" in deep["reason"], deep
