"""The project's shape rules that no linter checks: no function in ``src/`` is over 60 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import lineoa_export

SRC = Path(lineoa_export.__file__).parent
MAX_LINES = 60


def test_no_function_is_over_60_lines() -> None:
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "functions over 60 lines: " + ", ".join(long)


CONSOLE = SRC / "web" / "console"


def _console_modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in sorted(CONSOLE.glob("*.py"))}


def _defined_at_top(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return names


def test_console_modules_import_each_other_at_the_top_and_only_public_names() -> None:
    """An import inside a function hides a cycle; a private name imported from a sibling is a helper
    in the wrong module. Both mean the console's modules are layered wrong (guards.py is the layer)."""
    wrong = []
    for name, tree in _console_modules().items():
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in top:
                wrong.append(f"{name}.py:{node.lineno} imports inside a function")
            if isinstance(node, ast.ImportFrom) and node.level == 1:
                private = [a.name for a in node.names if a.name.startswith("_")]
                if private:
                    wrong.append(f"{name}.py:{node.lineno} imports private {', '.join(private)} from .{node.module}")
    assert not wrong, "; ".join(wrong)


def test_the_console_guards_are_defined_once() -> None:
    """Every router takes its role guards (C, Reader, AdminPost…) and URL helpers from guards.py."""
    modules = _console_modules()
    guards = _defined_at_top(modules.pop("guards"))
    again = {f"{name}.py": sorted(_defined_at_top(tree) & guards) for name, tree in modules.items()}
    assert not {module: names for module, names in again.items() if names}
