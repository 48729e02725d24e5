"""Grouping planned destroys into `zfs destroy -r root@a,b` where that is exact: one command per
uniformly pruned subtree, never reaching a kept, held, protected, foreign or unknown snapshot.
The property test replays the commands with ZFS's `-r` semantics (each name wherever it exists
below the root; datasets without it are skipped) over hidden true snapshot sets."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.core.destroy_groups import covered, group_destroys
from zfsrep.core.snapshot import is_descendant

MANY = [f"p/lab/many/c{i:02}" for i in range(30)]
TREE = ["p/lab", "p/lab/many", *MANY]


def shape(commands):
    return [(c.root, c.names, c.recursive) for c in commands]


def replay(commands, truth):
    """What ZFS destroys: ``{(dataset, name): [command index, ...]}``."""
    hits: dict[tuple[str, str], list[int]] = {}
    for i, c in enumerate(commands):
        for d, names in truth.items():
            if d == c.root or (c.recursive and is_descendant(d, c.root)):
                for n in c.names:
                    if n in names:
                        hits.setdefault((d, n), []).append(i)
    return hits


def test_uniform_subtree_is_one_recursive_command():
    destroy = {d: ["a", "b"] for d in TREE}
    known = {d: {"a", "b", "c"} for d in TREE}  # c is kept everywhere: it does not matter
    (cmd,) = group_destroys(destroy, TREE, known)
    assert (cmd.root, cmd.names, cmd.recursive) == ("p/lab", ("a", "b"), True)
    assert cmd.targets[0] == ("p/lab", ("a", "b")) and set(cmd.datasets) == set(TREE)


def test_unknown_child_forbids_r_above_it_but_not_beside_it():
    listed = [*TREE, "p/lab/skip", "p/lab/skip/deep"]
    destroy = {d: ["a"] for d in TREE}
    known = {d: {"a"} for d in TREE}  # skip/ (excluded) was never listed: it may have "a"
    assert shape(group_destroys(destroy, listed, known)) == [
        ("p/lab", ("a",), False), ("p/lab/many", ("a",), True)]


def test_kept_snapshot_of_the_same_name_blocks_only_that_name_on_its_ancestors():
    destroy = {d: ["a", "b"] for d in TREE}
    destroy["p/lab/many/c05"] = ["b"]  # its "a" is held (or protected, or kept): never -r over it
    known = {d: {"a", "b"} for d in TREE}
    commands = group_destroys(destroy, TREE, known)
    assert shape(commands)[:2] == [("p/lab", ("b",), True), ("p/lab", ("a",), False)]
    rest = shape(commands)[2:]
    assert rest == [("p/lab/many", ("a",), False)] + [(d, ("a",), False) for d in MANY if d != "p/lab/many/c05"]


def test_a_name_the_root_does_not_prune_is_not_sent_from_it():
    # the parent keeps "a"; each child prunes it: no -r from the parent, one command per child
    destroy = {"p/x/1": ["a"], "p/x/2": ["a"]}
    known = {"p/x": {"a"}, "p/x/1": {"a"}, "p/x/2": {"a"}}
    assert shape(group_destroys(destroy, ["p/x", "p/x/1", "p/x/2"], known)) == [
        ("p/x/1", ("a",), False), ("p/x/2", ("a",), False)]


def test_not_listed_dataset_is_never_a_recursive_root():
    # its children were never listed, so -r could reach anything below it
    assert shape(group_destroys({"p/q": ["a"]}, [], {"p/q": {"a"}})) == [("p/q", ("a",), False)]
    # and a listed child under an unlisted parent: the parent is not a root either
    assert shape(group_destroys({"p": ["a"], "p/q": ["a"]}, ["p/q"], {"p": {"a"}, "p/q": {"a"}})) == [
        ("p/q", ("a",), False), ("p", ("a",), False)]


def test_root_covering_only_itself_has_no_dash_r_and_batches_its_names():
    destroy = {"p/a": ["x", "y"], "p/a/b": []}
    known = {"p/a": {"x", "y"}, "p/a/b": {"z"}}
    assert shape(group_destroys(destroy, ["p/a", "p/a/b"], known)) == [("p/a", ("x", "y"), False)]


def test_nothing_to_destroy_is_no_command():
    assert group_destroys({"p/a": []}, ["p/a"], {"p/a": {"x"}}) == []


NAMES = ["a", "b", "c", "d"]


@st.composite
def trees(draw):
    """A random pool: parents drawn among earlier datasets, the true snapshots of each, which
    datasets' snapshots were listed (known), a plan destroying some of a known dataset's
    snapshots (whatever it keeps stands for kept/held/protected/foreign), and the datasets
    listed (planned ones may lie outside it, e.g. above the configured roots)."""
    datasets = ["p"]
    for i in range(draw(st.integers(0, 14))):
        datasets.append(f"{draw(st.sampled_from(datasets))}/{i}")
    truth = {d: set(draw(st.sets(st.sampled_from(NAMES)))) for d in datasets}
    known = {d: truth[d] for d in datasets if draw(st.integers(0, 5))}  # ~1 in 6 unknown
    destroy = {d: sorted(draw(st.sets(st.sampled_from(sorted(names))))) if names else []
               for d, names in known.items()}
    # the recursive listing of some configured roots: whole subtrees (ZFS lists every descendant)
    roots = draw(st.sets(st.sampled_from(datasets), min_size=1))
    listed = [d for d in datasets if any(is_descendant(d, r) for r in roots)]
    return datasets, truth, known, destroy, listed


@settings(max_examples=300, deadline=None)
@given(trees())
def test_grouped_commands_destroy_exactly_the_planned_set_once(tree):
    _, truth, known, destroy, listed = tree
    commands = group_destroys(destroy, listed, known)
    planned = {(d, n) for d, names in destroy.items() for n in names}
    hits = replay(commands, truth)
    assert set(hits) == planned  # nothing kept, held or unknown is reached; nothing planned is missed
    assert all(len(i) == 1 for i in hits.values())  # each by exactly one command
    # what each command says it destroys is what ZFS does
    assert {(d, n): [i] for i, c in enumerate(commands) for d, names in c.targets for n in names} == hits
    assert {d: sorted(ns) for d, ns in covered(commands).items()} == {d: ns for d, ns in destroy.items() if ns}
    # never more commands than one per dataset, and -r only where it reaches another dataset
    assert len(commands) <= 2 * sum(1 for ns in destroy.values() if ns)
    for c in commands:
        assert c.names and c.targets[0][0] == c.root
        assert len(c.datasets) > 1 if c.recursive else c.datasets == (c.root,)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 40), st.sets(st.sampled_from(NAMES), min_size=1))
def test_uniformly_pruned_tree_takes_one_command_whatever_its_shape(size, names):
    datasets = ["p/r"]
    for i in range(1, size):
        datasets.append(f"{datasets[i // 2]}/{i}")
    destroy = {d: sorted(names) for d in datasets}
    commands = group_destroys(destroy, datasets, {d: set(names) | {"kept"} for d in datasets})
    assert shape(commands) == [("p/r", tuple(sorted(names)), len(datasets) > 1)]
