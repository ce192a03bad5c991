"""Figures of the code's shape (issue #14's closing note): imports written inside functions (all, and
those of the project's own packages), the import-contract exceptions listed in ``pyproject.toml``,
the largest module and the largest function complexity (ruff's C901).

    python bench/structure.py [ROOT]      # ROOT: a checkout (default: this one)

Counts the project's packages (bot, handlers, storage, messages) outside the Alembic migrations; the
complexity comes from ``ruff check --select C901`` with the threshold at 0, so every function is listed.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

PACKAGES = ("bot", "handlers", "storage", "messages")


def modules(root: Path) -> list[Path]:
    found = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" not in path.relative_to(root).parts:
                found.append(path)
    return found


def _own(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        return node.level > 0 or (node.module or "").split(".")[0] in PACKAGES
    return any(alias.name.split(".")[0] in PACKAGES for alias in node.names)


def function_imports(paths: list[Path]) -> tuple[int, int]:
    """Imports inside a function body (TYPE_CHECKING blocks are module level and not counted)."""
    every = own = 0
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for function in ast.walk(tree):
            if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            for node in ast.walk(function):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    every += 1
                    own += _own(node)
    return every, own


def contract_exceptions(root: Path) -> int:
    """Distinct ignored imports over all contracts."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    return len({line for contract in contracts for line in contract.get("ignore_imports", [])})


def largest_module(root: Path, paths: list[Path]) -> tuple[str, int]:
    sizes = [
        (len(path.read_text(encoding="utf-8").splitlines()), str(path.relative_to(root))) for path in paths
    ]
    lines, name = max(sizes)
    return name, lines


def max_complexity(root: Path, paths: list[Path]) -> tuple[str, int]:
    ruff = Path(sys.executable).parent / "ruff"
    result = subprocess.run(
        [
            str(ruff),
            "check",
            "--isolated",
            "--select",
            "C901",
            "--config",
            "lint.mccabe.max-complexity=0",
            "--output-format",
            "concise",
            *[str(p) for p in paths],
        ],
        cwd=root,
        capture_output=True,
        text=True,
        check=False,
    )
    best = ("", 0)
    for line in result.stdout.splitlines():
        found = re.search(r"`([^`]+)` is too complex \((\d+) > 0\)", line)
        if found and int(found.group(2)) > best[1]:
            best = (f"{line.split(':')[0]}:{found.group(1)}", int(found.group(2)))
    return best


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent).resolve()
    paths = modules(root)
    every, own = function_imports(paths)
    name, lines = largest_module(root, paths)
    where, complexity = max_complexity(root, paths)
    print(f"modules counted: {len(paths)}")
    print(f"function-level imports: {every} (of the project's own packages: {own})")
    print(f"import-contract exceptions: {contract_exceptions(root)}")
    print(f"largest module: {name} ({lines} lines)")
    print(f"max complexity (C901): {complexity} ({where})")


if __name__ == "__main__":
    main()
