"""`ItemResult.details` against its declaration (`zfsrep/core/details.py`): read zfsrep's source
and find every key code writes into an item's details and every key it reads from them."""

import ast
from pathlib import Path

import zfsrep
from zfsrep.core.details import Details
from zfsrep.core.result import ItemResult

PACKAGE = Path(zfsrep.__file__).parent
DECLARED = set(Details.__annotations__)


def _is_details(node: ast.AST) -> bool:
    """``details``, ``item.details``, ``items[x].details``, …"""
    return (isinstance(node, ast.Name) and node.id == "details") or \
        (isinstance(node, ast.Attribute) and node.attr == "details")


def _key(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dict_keys(node: ast.AST) -> list[str]:
    return [k for k in map(_key, node.keys) if k] if isinstance(node, ast.Dict) else []


def _keyword_details_functions(trees: dict[str, ast.Module]) -> dict[str, set[str]]:
    """Functions taking ``**details``: name -> their named parameters (the other keywords of a call
    to one go into an item's details, as `target_item`'s do)."""
    found: dict[str, set[str]] = {}
    for tree in trees.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.args.kwarg and node.args.kwarg.arg == "details":
                a = node.args
                found[node.name] = {p.arg for p in a.posonlyargs + a.args + a.kwonlyargs}
    return found


def scan(trees: dict[str, ast.Module]) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """(written, read): key -> the places (file:line) that write or read it."""
    written: dict[str, list[str]] = {}
    read: dict[str, list[str]] = {}
    takes_details = _keyword_details_functions(trees)
    for path, tree in trees.items():
        for node in ast.walk(tree):
            where = f"{path}:{getattr(node, 'lineno', '?')}"
            keys: list[str] = []
            into = read
            if isinstance(node, ast.Subscript) and _is_details(node.value) and _key(node.slice):
                keys, into = [_key(node.slice)], written if isinstance(node.ctx, ast.Store) else read
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and _is_details(node.func.value) and node.args and _key(node.args[0]):
                keys = [_key(node.args[0])]
                into = written if node.func.attr in ("setdefault", "update", "__setitem__") else read
            elif isinstance(node, ast.Compare) and _key(node.left) and isinstance(node.ops[0], ast.In | ast.NotIn) \
                    and _is_details(node.comparators[0]):
                keys = [_key(node.left)]
            elif isinstance(node, ast.Call):
                into = written
                keys = [k for kw in node.keywords if kw.arg == "details" for k in _dict_keys(kw.value)]
                name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
                if name in takes_details:
                    keys += [kw.arg for kw in node.keywords if kw.arg and kw.arg not in takes_details[name]]
            elif isinstance(node, ast.Assign) and any(_is_details(t) for t in node.targets):
                keys, into = _dict_keys(node.value), written
            for key in keys:
                into.setdefault(key, []).append(where)
    return written, read


def _parse(files: dict[str, str]) -> dict[str, ast.Module]:
    return {path: ast.parse(text, path) for path, text in files.items()}


def _zfsrep_source() -> dict[str, ast.Module]:
    return _parse({str(p.relative_to(PACKAGE.parent)): p.read_text() for p in sorted(PACKAGE.rglob("*.py"))})


def test_every_details_key_zfsrep_uses_is_declared_and_every_declared_one_is_written():
    written, read = scan(_zfsrep_source())
    # the scan finds what it should: a renderer, a writer through **details, an in-test
    assert "zfsrep/cli/scrub.py" in " ".join(read["pool"]) and "instance_id" in written
    assert any("zfsrep/cli/snapshot.py" in w for w in read["snapshot_command"])
    undeclared = {k: places for k, places in {**read, **written}.items() if k not in DECLARED}
    assert not undeclared, f"declare these in zfsrep/core/details.py (or fix the name): {undeclared}"
    never_written = {k: places for k, places in read.items() if k not in written}
    assert not never_written, f"read, but no action writes them: {never_written}"
    stale = DECLARED - set(written)
    assert not stale, f"declared in zfsrep/core/details.py, but nothing writes them: {sorted(stale)}"


def test_the_scan_catches_a_misspelt_key_and_a_key_no_action_writes():
    written, read = scan(_parse({
        "actions/x.py": "def target_item(target, status, steps, error=None, **details): ...\n"
                        "item = ItemResult(dataset='d', status='ok', details={'plan': [], 'nots': []})\n"
                        "item.details['mounted'] = True\n"
                        "item.details.setdefault('warnings', []).append('w')\n"
                        "target_item(t, 'ok', [], 'e', kind='ec2', zone_name='z')\n",
        "cli/x.py": "item.details.get('copy')\nif 'pool' in i.details: pass\nitem.details['waited']\n",
    }))
    assert set(written) == {"plan", "nots", "mounted", "warnings", "kind", "zone_name"}
    assert set(read) == {"copy", "pool", "waited"}
    assert {"nots", "zone_name"} == set(written) - DECLARED


def test_an_item_starts_with_empty_details_of_its_own():
    a, b = ItemResult(dataset="d", status="ok"), ItemResult(dataset="e", status="ok")
    a.add_note("x")
    assert a.details == {"notes": ["x"]} and b.details == {}


def test_a_renamed_key_is_not_declared_again():
    from zfsrep.core.details import RENAMED

    assert not set(RENAMED) & DECLARED and set(RENAMED.values()) <= DECLARED


def test_the_renderers_each_declared_key_names_are_the_ones_that_read_it():
    import re

    lines = (PACKAGE / "core" / "details.py").read_text().split("class Details(")[1].splitlines()
    said = {}
    for line in lines:
        m = re.match(r"\s+(\w+): .*#.*\bshown by ([a-z_]+(?:, [a-z_]+)*)", line)
        if m:
            said[m[1]] = set(m[2].split(", "))
    _, read = scan(_zfsrep_source())
    readers = {key: {re.sub(r"zfsrep/cli/(\w+)\.py:.*", r"\1", p) for p in places if p.startswith("zfsrep/cli/")}
               for key, places in read.items()}
    assert said == {key: cli for key, cli in readers.items() if cli}
