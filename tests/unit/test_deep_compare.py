import hashlib
import os
import subprocess

import pytest

from zfsrep.core.deep_compare import (
    CHECKSUM_ALL_SCRIPT,
    CHECKSUM_SCRIPT,
    MANIFEST_SCRIPT,
    Entry,
    ManifestError,
    choose_sample,
    compare,
    parse_checksums,
    parse_manifest,
    stdin_for,
)


def run(script, directory, stdin=""):
    return subprocess.run(["sh", "-c", script, "sh", str(directory)], input=stdin.encode(),
                          capture_output=True, check=False).stdout.decode("utf-8", "replace")


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "snap"
    (root / "dir with space").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    (root / "dir with space" / "-dash").write_text("dash\n")
    (root / "tab\tname").write_text("tab\n")
    (root / "link").symlink_to("a.txt")
    for p in root.rglob("*"):
        os.utime(p, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    return root


def test_the_shell_programs_read_a_real_tree(tree):
    manifest = parse_manifest(run(MANIFEST_SCRIPT, tree))
    assert set(manifest) == {"a.txt", "dir with space", "dir with space/-dash", "tab\tname", "link"}
    assert manifest["link"].kind == "l" and manifest["link"].link == "a.txt"
    assert manifest["a.txt"].size == 6 and manifest["a.txt"].mtime.startswith("1700000000")
    files = choose_sample(manifest, 0, seed=1)
    assert files == ["a.txt", "dir with space/-dash", "tab\tname"]
    sums = parse_checksums(run(CHECKSUM_SCRIPT, tree, stdin_for(files)))
    assert sums["a.txt"] == hashlib.sha256(b"alpha\n").hexdigest()
    assert sums == parse_checksums(run(CHECKSUM_ALL_SCRIPT, tree))


def test_differences_are_named(tree, tmp_path):
    other = tmp_path / "other"
    subprocess.run(["cp", "-a", str(tree), str(other)], check=True)
    (other / "a.txt").write_text("ALPHA\n")
    os.utime(other / "a.txt", (1_700_000_000, 1_700_000_000))
    (other / "new").write_text("x")
    (other / "tab\tname").unlink()
    m1, m2 = parse_manifest(run(MANIFEST_SCRIPT, tree)), parse_manifest(run(MANIFEST_SCRIPT, other))
    files = choose_sample(m1, 0, seed=1)
    s1 = parse_checksums(run(CHECKSUM_SCRIPT, tree, stdin_for(files)))
    s2 = parse_checksums(run(CHECKSUM_SCRIPT, other, stdin_for(files)))
    result = compare(m1, m2, s1, s2, files)
    assert not result.equal
    assert "content differs (sha256): a.txt" in result.differences
    assert "only on the target: new" in result.differences
    assert "missing on the target: tab\tname" in result.differences
    assert "unreadable on the target: tab\tname" in result.differences
    same = compare(m1, m1, s1, s1, files)
    assert same.equal and same.files_checked == 3


def test_sample_takes_newest_and_rotates_with_the_seed():
    manifest = {f"f{i:03}": Entry("f", 1, "644", "0", "0", str(i), "") for i in range(200)}
    manifest["d"] = Entry("d", 3, "755", "0", "0", "1", "")
    a, b = choose_sample(manifest, 10, seed=1), choose_sample(manifest, 10, seed=2)
    assert len(a) == 10 and "d" not in a
    assert {"f199", "f198", "f197", "f196", "f195"} <= set(a) & set(b)
    assert a != b and choose_sample(manifest, 10, seed=1) == a


def test_garbage_is_an_error():
    with pytest.raises(ManifestError):
        parse_manifest("f\0" + "1\0")
    with pytest.raises(ManifestError):
        parse_checksums("nothash  ./x\0")
