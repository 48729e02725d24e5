"""Getting data back against real OpenZFS: `zfsrep restore|rollback|verify|snapshots|scrub` run in
the `source` VM against the `target` VM.

The target copy is seeded with plain `zfs send | ssh target zfs receive -u` (what replicate does),
so these tests depend only on the verbs under test. Every assertion is on a real outcome: exit
codes, file checksums, snapshot GUIDs and lists on both pools, `zpool status`.
"""

from __future__ import annotations

import json

import pytest
import tomli_w

pytestmark = pytest.mark.lab

CONFIG = "/etc/zfsrep/config.toml"
PARENT = "backup/replica"
COPY = f"{PARENT}/tank/data"


def write_config(lab):
    doc = {
        "state_dir": "/var/lib/zfsrep",
        "lock_dir": "/run/zfsrep",
        "datasets": [{"name": "tank/data"}],
        "targets": {"backup": {"host": "target", "dataset": PARENT}},
    }
    lab.ssh("source", f"mkdir -p /etc/zfsrep && cat > {CONFIG}", input=tomli_w.dumps(doc))


def zfsrep(lab, *args, timeout=600):
    proc = lab.run_zfsrep(list(args), check=False, timeout=timeout)
    data = None
    if "--json" in args and proc.stdout.strip():
        data = json.loads(proc.stdout)
    return proc.returncode, data, proc.stdout + proc.stderr


def write_files(lab, host, path, count, seed):
    lab.ssh(host, ["sh", "-c", """
set -e
mkdir -p "$1"; i=0
while [ $i -lt $2 ]; do
    head -c $(( ($3 * (i + 1) * 7919) % 200000 + 1 )) /dev/urandom > "$1/f$3-$i.bin"
    i=$((i + 1))
done
mkdir -p "$1/sub dir" && echo hello > "$1/sub dir/-odd name"
ln -sf "f$3-0.bin" "$1/link$3"
""", "w", path, str(count), str(seed)])


def sums(lab, host, path):
    out = lab.ssh(host, ["sh", "-c", 'cd "$1" && find . -type f -print0 | sort -z | xargs -0r sha256sum',
                         "s", path])
    return dict(reversed(line.split(None, 1)) for line in out.stdout.splitlines())


def guids(lab, host, dataset):
    out = lab.ssh(host, ["zfs", "list", "-H", "-p", "-t", "snapshot", "-o", "name,guid", "-d", "1", dataset])
    return {line.split("\t")[0].split("@", 1)[1]: line.split("\t")[1] for line in out.stdout.splitlines()}


def seed(lab, snapshots=("s1", "s2")):
    """tank/data with files and snapshots, replicated to the target (full, then -I)."""
    write_config(lab)
    lab.ssh("source", "zfs create tank/data")
    previous = None
    for i, name in enumerate(snapshots):
        write_files(lab, "source", "/tank/data", 6, i + 1)
        lab.ssh("source", f"zfs snapshot tank/data@{name}")
        base = f"-I @{previous} " if previous else ""
        lab.ssh("source", f"zfs send {base}tank/data@{name} | ssh target "
                          f"'zfs create -p -o canmount=off {PARENT}/tank 2>/dev/null; zfs receive -u {COPY}'")
        previous = name


def test_restore_after_the_source_was_destroyed(clean_lab):
    lab = clean_lab
    seed(lab)
    original = sums(lab, "source", "/tank/data/.zfs/snapshot/s2")
    original_s1 = sums(lab, "source", "/tank/data/.zfs/snapshot/s1")
    assert len(original) >= 7 and original != original_s1
    lab.ssh("source", "zfs destroy -r tank/data")

    code, data, out = zfsrep(lab, "restore", "tank/data", "--target", "backup", "--json")
    assert code == 0, out
    (item,) = data["items"]
    assert item["dataset"] == "tank/data" and item["to_snapshot"] == "s2" and item["details"]["mounted"]
    assert sums(lab, "source", "/tank/data") == original
    # the restored snapshot is the target's (same GUID): replication can continue incrementally
    assert guids(lab, "source", "tank/data")["s2"] == guids(lab, "target", COPY)["s2"]

    # now it is live: refused without --force, and nothing changed
    code, _, out = zfsrep(lab, "restore", "tank/data@s1", "--target", "backup")
    assert code == 1 and "exists and is live" in out and "--force" in out
    assert sums(lab, "source", "/tank/data") == original

    # an older snapshot next to it
    code, _, out = zfsrep(lab, "restore", "tank/data@s1", "--target", "backup", "--to", "tank/data-s1")
    assert code == 0, out
    assert sums(lab, "source", "/tank/data-s1") == original_s1


def test_restore_force_replaces_only_after_the_copy_arrived(clean_lab):
    lab = clean_lab
    seed(lab)
    want = sums(lab, "source", "/tank/data/.zfs/snapshot/s1")
    lab.ssh("source", "echo scribble > /tank/data/new-file && zfs snapshot tank/data@local")
    code, _, out = zfsrep(lab, "restore", "tank/data@s1", "--target", "backup", "--force")
    assert code == 0, out
    assert "DESTROY tank/data" in out  # said what it destroys before doing it
    assert sums(lab, "source", "/tank/data") == want
    assert sorted(guids(lab, "source", "tank/data")) == ["s1"]
    assert lab.ssh("source", "zfs list -H -o name tank/data.zfsrep-restore", check=False).returncode != 0


def test_rollback_lists_asks_and_protects_the_replication_base(clean_lab):
    lab = clean_lab
    seed(lab, ("s1", "s2", "s3"))
    lab.ssh("source", "zfs hold zfsrep:backup tank/data@s3")

    code, _, out = zfsrep(lab, "rollback", "tank/data@s1")
    assert code == 2 and "destroy @s2" in out and "destroy @s3" in out and "--yes" in out
    code, _, out = zfsrep(lab, "rollback", "tank/data@s1", "--yes")
    assert code == 1 and "replication base of backup" in out
    assert sorted(guids(lab, "source", "tank/data")) == ["s1", "s2", "s3"]

    code, _, out = zfsrep(lab, "rollback", "tank/data@s1", "--yes", "--force")
    assert code == 0, out
    assert sorted(guids(lab, "source", "tank/data")) == ["s1"]
    assert sums(lab, "source", "/tank/data") == sums(lab, "source", "/tank/data/.zfs/snapshot/s1")


def test_verify_clean_then_target_changed(clean_lab):
    lab = clean_lab
    seed(lab)
    code, data, out = zfsrep(lab, "verify", "--deep", "--sample", "0", "--json")
    assert code == 0, out
    (item,) = data["items"]
    assert item["status"] == "ok" and item["details"]["deep"]["checked"]
    assert item["details"]["deep"]["files_checked"] >= 7 and item["details"]["deep"]["differences"] == []
    stored = json.loads(lab.ssh("source", "cat /var/lib/zfsrep/last-verify.json").stdout)
    assert stored["status"] == "ok"

    # the target copy is changed and a new snapshot taken there: not the source's data any more
    lab.ssh("target", f"zfs set mountpoint=/mnt/copy {COPY} && zfs mount {COPY} && "
                      f"echo corrupted > /mnt/copy/f1-0.bin && zfs snapshot {COPY}@tampered")
    code, data, out = zfsrep(lab, "verify", "--json")
    assert code == 1, out
    (item,) = data["items"]
    assert item["status"] == "failed" and "tampered" in item["error"] and "never had" in item["error"]
    assert json.loads(lab.ssh("source", "cat /var/lib/zfsrep/last-verify.json").stdout)["status"] == "failed"

    # the same name with other data: roll the target back, rewrite, snapshot as s2
    lab.ssh("target", f"zfs rollback -r {COPY}@s1 && echo corrupted > /mnt/copy/f1-0.bin && zfs snapshot {COPY}@s2")
    code, data, out = zfsrep(lab, "verify", "--json")
    assert code == 1 and "GUID differs" in data["items"][0]["error"], out


def test_snapshots_shows_both_sides(clean_lab):
    lab = clean_lab
    seed(lab)
    lab.ssh("source", "zfs snapshot tank/data@only-here")
    code, data, out = zfsrep(lab, "snapshots", "--json")
    assert code == 0, out
    rows = {r["name"]: r for r in data["items"][0]["details"]["rows"]}
    assert rows["s1"]["common"] and rows["s2"]["common"] and not rows["only-here"]["common"]
    code, _, out = zfsrep(lab, "snapshots", "tank/data")
    assert code == 0 and "common" in out


def test_scrub_reports_the_result(clean_lab):
    lab = clean_lab
    seed(lab)
    code, data, out = zfsrep(lab, "scrub", "--target", "backup", "--wait", "--json")
    assert code == 0, out
    status = data["items"][0]["details"]["status"]
    assert status["finished"] and status["healthy"] and status["state"] == "ONLINE"
    code, data, out = zfsrep(lab, "scrub", "--target", "backup", "--json")
    assert code == 0, out
    assert "status" in data["items"][0]["details"]
