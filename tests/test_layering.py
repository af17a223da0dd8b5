"""The rooms and their import directions (docs/ARCHITECTURE.md, "Rooms and import directions").

Every import of the project's own modules is read from the source (module level and inside functions
alike, by an AST walk), so an upward import or a circle cannot hide behind a function-level import.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ROOMS = ("base", "golden", "rtl", "gen", "sim", "avatargan")
#: Which rooms each room may import (itself always). ``base`` stands on nothing; the CLI on everything.
ALLOWED = {
    "base": set(),
    "golden": {"base"},
    "rtl": {"base", "golden"},
    "gen": {"base", "golden", "rtl"},
    "sim": {"base", "golden", "rtl", "gen"},
    "avatargan": {"base", "golden", "rtl", "gen", "sim"},
}


def _modules() -> dict[str, Path]:
    mods = {}
    for room in ROOMS:
        for f in sorted((ROOT / room).rglob("*.py")):
            parts = list(f.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = f
    return mods


def imports_of(path: Path, name: str, known) -> set[str]:
    """The project modules that the file imports anywhere in its body."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()

    def add(mod):
        while mod and mod not in known:        # ``import golden.qmodel.x`` -> the longest known prefix
            mod = mod.rpartition(".")[0]
        if mod:
            found.add(mod)

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                add(a.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module
            for a in node.names:                 # ``from golden import qmodel`` imports golden.qmodel
                if f"{mod}.{a.name}" in known:
                    found.add(f"{mod}.{a.name}")
            add(mod)
    found.discard(name)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: imports_of(path, name, mods) for name, path in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_imports_point_down():
    bad = [f"{a} imports {b}" for a, deps in import_graph().items() for b in sorted(deps)
           if b.split(".")[0] != a.split(".")[0] and b.split(".")[0] not in ALLOWED[a.split(".")[0]]]
    assert bad == []


def test_no_room_below_the_cli_imports_it():
    bad = [a for a, deps in import_graph().items()
           if a.split(".")[0] != "avatargan" and any(b.split(".")[0] == "avatargan" for b in deps)]
    assert bad == []


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_walker_sees_function_level_imports_and_circles(tmp_path):
    # The checks above are only worth something if the walk finds what they forbid.
    f = tmp_path / "m.py"
    f.write_text("import os\n\ndef g():\n    from golden.qmodel import load_qmodel\n    from avatargan import cli\n")
    known = set(_modules())
    assert imports_of(f, "golden.fixed", known) == {"golden.qmodel", "avatargan", "avatargan.cli"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
