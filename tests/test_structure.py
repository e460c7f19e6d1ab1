"""The package rules of DESIGN.md, checked on the source: who may import whom.

threads/ imports none of the others; inbound/, outbound/ and portal/ take nothing from the
composition root pawpost/ but its settings; the shared command helpers (clikit/) import none
of the parts, so `pawpost/cli.py` is the only module above them all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PARTS = ("inbound", "outbound", "portal")


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def top(module: str) -> str:
    return module.split(".", 1)[0]


def sources(package: str) -> list[Path]:
    return sorted(p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts)


@pytest.mark.parametrize("package", [*PARTS, "clikit", "threads"])
def test_nothing_below_the_composition_root_takes_more_than_its_settings(package: str) -> None:
    wrong = []
    for path in sources(package):
        for module in imported_modules(path):
            if top(module) == "pawpost" and module not in ("pawpost", "pawpost.settings", "pawpost.settings.Settings") and not module.startswith("pawpost.settings."):
                wrong.append(f"{path.relative_to(ROOT)} imports {module}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("package", ["clikit", "threads"])
def test_the_shared_layers_import_none_of_the_parts(package: str) -> None:
    forbidden = set(PARTS) | ({"clikit", "pawpost"} if package == "threads" else set())
    wrong = [
        f"{path.relative_to(ROOT)} imports {module}"
        for path in sources(package)
        for module in imported_modules(path)
        if top(module) in forbidden
    ]
    assert not wrong, "\n".join(wrong)


def test_only_the_pawpost_command_imports_the_pawpost_command() -> None:
    importers = [
        str(path.relative_to(ROOT))
        for package in (*PARTS, "clikit", "threads", "pawpost")
        for path in sources(package)
        if any(module == "pawpost.cli" or module.startswith("pawpost.cli.") for module in imported_modules(path))
    ]
    assert importers == []
