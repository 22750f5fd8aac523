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
