"""`zfsrep.targets.select`: what a copy is called, which targets and datasets a run means, and
the one coverage rule (`zfsrep.core.coverage`) that every verb applies the same way."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from zfsrep.config.load import parse_config
from zfsrep.config.model import CommandWarmup, Config, DatasetConfig, TargetConfig
from zfsrep.core.snapshot_plan import managed_datasets
from zfsrep.errors import UsageError
from zfsrep.targets.select import (
    TargetCopies, UnknownTargetError, check_targets, covered, covers, governing_entry, pick_datasets,
    pick_targets, require_target, selected_entries, source_dataset, target_dataset, warmup_targets,
)

# "a" and "ab": a sibling that shares a prefix must never count as a child
names = st.lists(st.sampled_from(["a", "ab", "b"]), min_size=0, max_size=3).map(lambda p: "/".join(["tank", *p]))


def under(dataset: str, ancestor: str) -> bool:
    """The model: by path components, not by string prefix."""
    return dataset.split("/")[: len(ancestor.split("/"))] == ancestor.split("/")


def model_covers(entry: DatasetConfig, dataset: str) -> bool:
    inside = dataset == entry.name or (entry.recursive and under(dataset, entry.name))
    return inside and not any(under(dataset, x) for x in entry.exclude)


entries = st.builds(DatasetConfig, name=names, recursive=st.booleans(),
                    exclude=st.lists(names, max_size=3).map(tuple), snapshot=st.booleans())


def valid_entry(name: str, recursive: bool, children: list[str]) -> DatasetConfig:
    """An entry of the shape the config check lets through: excludes only below, only if recursive."""
    return DatasetConfig(name, recursive=recursive,
                         exclude=tuple(c for c in children if c.startswith(name + "/")) if recursive else ())


valid_entries = st.builds(valid_entry, names, st.booleans(), st.lists(names, max_size=3))
TARGET = TargetConfig(name="offsite", host="b", dataset="backup/h")


# --- the coverage rule -------------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(entries, names)
def test_covers_is_the_entry_itself_or_a_recursive_descendant_not_under_an_exclude(entry, dataset):
    assert covers(entry, dataset) == model_covers(entry, dataset)


@settings(max_examples=200, deadline=None)
@given(valid_entries)
def test_an_entry_the_config_allows_always_covers_its_own_dataset(entry):
    assert covers(entry, entry.name)


def test_covers_by_example():
    home = DatasetConfig("tank/home", recursive=True, exclude=("tank/home/cache",))
    assert [d for d in ["tank", "tank/home", "tank/home/a", "tank/home/a/b", "tank/homework",
                        "tank/home/cache", "tank/home/cache/x", "tank/home/cachet"] if covers(home, d)] \
        == ["tank/home", "tank/home/a", "tank/home/a/b", "tank/home/cachet"]
    assert [d for d in ["tank/vm", "tank/vm/disk"] if covers(DatasetConfig("tank/vm"), d)] == ["tank/vm"]


def test_a_config_read_from_toml_covers_as_it_says():
    cfg = parse_config('datasets = [{name = "tank/home", recursive = true, exclude = ["tank/home/cache"]},\n'
                       '  {name = "tank/home/db"}]\n'
                       'targets.offsite = {host = "b", dataset = "backup/h"}\n')
    assert [d for d in ["tank/home/a", "tank/home/cache/x", "tank/home/db"]
            if any(covers(e, d) for e in cfg.datasets)] == ["tank/home/a", "tank/home/db"]
    assert governing_entry(cfg.datasets, "tank/home/db").name == "tank/home/db"


@settings(max_examples=300, deadline=None)
@given(st.lists(entries, max_size=4), names)
def test_the_governing_entry_is_the_first_of_the_longest_covering_entries(listed_entries, dataset):
    covering = [e for e in listed_entries if model_covers(e, dataset)]
    longest = max((len(e.name) for e in covering), default=None)
    expected = next((e for e in covering if len(e.name) == longest), None)
    assert governing_entry(listed_entries, dataset) is expected


@settings(max_examples=300, deadline=None)
@given(st.lists(valid_entries, min_size=1, max_size=4), st.lists(names, max_size=8).map(lambda n: list(dict.fromkeys(n))))
def test_every_user_of_the_rule_agrees(listed_entries, listed):
    """covered (snapshots/verify), TargetCopies (replicate's target listing) and
    managed_datasets (snapshot) all say what the model says."""
    cfg = Config(datasets=tuple(listed_entries), targets={"offsite": TARGET})
    copies = TargetCopies.of(TARGET, listed_entries, cfg)
    for entry in listed_entries:
        assert covered(entry, listed) == ([] if entry.name in listed else [entry.name]) + [
            d for d in listed if model_covers(entry, d)]
    for d in listed:
        assert (target_dataset(TARGET, d) in copies) == any(model_covers(e, d) for e in listed_entries)
    managed, missing = managed_datasets(listed_entries, listed)
    present = [e for e in listed_entries if e.name in listed]
    assert managed == {d: g for d in listed if (g := governing_entry(present, d)) is not None and g.snapshot}
    assert [e for e, _ in missing] == [e for e in listed_entries if e.name not in listed]


# --- what a copy is called ---------------------------------------------------------------------

@given(names)
def test_a_copy_is_named_under_the_targets_dataset_and_back(dataset):
    copy = target_dataset(TARGET, dataset)
    assert copy == f"backup/h/{dataset}"
    assert source_dataset(TARGET, copy) == dataset


def test_a_dataset_outside_the_targets_tree_has_no_source():
    assert [source_dataset(TARGET, c) for c in ["backup/h", "backup/hx/tank", "backup", "other/h/tank"]] \
        == [None, None, None, None]


def test_a_targets_copies_are_those_of_the_entries_that_go_to_it():
    cfg = parse_config('datasets = [{name = "tank/a"}, {name = "tank/b", targets = ["other"]}]\n'
                       'targets.offsite = {host = "b", dataset = "backup/h"}\n'
                       'targets.other = {host = "c", dataset = "backup/o"}\n')
    copies = TargetCopies.of(cfg.targets["offsite"], cfg.datasets, cfg)
    assert "backup/h/tank/a" in copies and "backup/h/tank/b" not in copies and 7 not in copies


# --- which targets and datasets ----------------------------------------------------------------

def three_targets() -> Config:
    return parse_config('datasets = [{name = "tank/b"}, {name = "tank/a", recursive = true}]\n'
                        'targets.zulu = {host = "z", dataset = "backup/z"}\n'
                        'targets.alpha = {host = "a", dataset = "backup/a"}\n'
                        '[targets.cold]\ndataset = "backup/c"\nhost = "c"\n'
                        '[targets.cold.warmup]\ntype = "command"\ncommand = ["true"]\n', path="/etc/z.toml")


def test_targets_come_in_the_order_named_or_else_in_the_configs_order():
    cfg = three_targets()
    assert [t.name for t in pick_targets(cfg, None)] == ["zulu", "alpha", "cold"]
    assert [t.name for t in pick_targets(cfg, [])] == ["zulu", "alpha", "cold"]
    assert [t.name for t in pick_targets(cfg, ["cold", "zulu"])] == ["cold", "zulu"]
    assert require_target(cfg, "alpha").name == "alpha"


def test_warmup_targets_are_the_on_demand_ones():
    cfg = three_targets()
    assert isinstance(cfg.targets["cold"].warmup, CommandWarmup)
    assert [t.name for t in warmup_targets(cfg, None)] == ["cold"]
    assert [t.name for t in warmup_targets(cfg, ["cold"])] == ["cold"]
    with pytest.raises(UsageError, match=r"target zulu has no \[targets.zulu.warmup\] table"):
        warmup_targets(cfg, ["zulu"])


def test_datasets_come_in_the_configs_order_whatever_the_order_named():
    cfg = three_targets()
    assert [d.name for d in pick_datasets(cfg, None)] == ["tank/b", "tank/a"]
    assert [d.name for d in pick_datasets(cfg, ["tank/a", "tank/b"])] == ["tank/b", "tank/a"]
    with pytest.raises(UsageError, match=r"^dataset tank/c, tank/d is not configured \(datasets\[\]\.name\)$"):
        pick_datasets(cfg, ["tank/d", "tank/c", "tank/a"])


def test_a_dataset_argument_means_its_entry_or_a_child_with_the_entrys_targets():
    cfg = parse_config('datasets = [{name = "tank/a", recursive = true, exclude = ["tank/a/tmp"], '
                       'targets = ["offsite"]}]\n'
                       'targets.offsite = {host = "b", dataset = "backup/h"}\n')
    assert selected_entries(cfg, None) == list(cfg.datasets)
    assert selected_entries(cfg, "tank/a@snap") == [cfg.datasets[0]]
    assert selected_entries(cfg, "tank/a/x/") == [DatasetConfig("tank/a/x", targets=("offsite",))]
    assert selected_entries(cfg, "tank/a/tmp") == [DatasetConfig("tank/a/tmp")]  # excluded: its own entry
    with pytest.raises(UsageError, match="no datasets configured in /c.toml"):
        selected_entries(Config(path="/c.toml"), None)


# --- the unknown-target error ------------------------------------------------------------------

def test_an_unknown_target_is_one_error_naming_the_config_the_known_targets_and_the_fix():
    cfg = three_targets()
    expected = ("no target named 'nope' in /etc/z.toml (known: alpha, cold, zulu); "
                "check --target, or add [targets.nope] to the config")
    for pick in (lambda: pick_targets(cfg, ["alpha", "nope"]), lambda: require_target(cfg, "nope"),
                 lambda: warmup_targets(cfg, ["nope"]), lambda: check_targets(cfg, ["nope", "nope"])):
        with pytest.raises(UnknownTargetError) as caught:
            pick()
        assert str(caught.value) == expected and caught.value.exit_code == 2
    check_targets(cfg, None)
    check_targets(cfg, ["cold"])


def test_several_unknown_targets_are_named_in_the_order_given():
    with pytest.raises(UnknownTargetError, match=re.escape(
            "no target named 'b', 'a' in the config (known: none); check --scrub-target, "
            "or add [targets.b], [targets.a] to the config")):
        check_targets(Config(), ["b", "a", "b"], option="--scrub-target")


def test_an_unknown_target_is_reported_before_one_without_a_warmup():
    with pytest.raises(UnknownTargetError, match="^no target named 'nope' in /etc/z.toml"):
        warmup_targets(three_targets(), ["zulu", "nope"])
