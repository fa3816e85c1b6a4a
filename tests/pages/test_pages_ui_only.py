"""Pages lay out what the package computes: no page imports torch, PIL or scipy.

The computing lives in segdemo (cached where it is slow), so every number a page
shows is computed by a function the unit tests check.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PAGES = [REPO / "app.py"] + sorted((REPO / "pages").glob("*.py"))
FORBIDDEN = ("torch", "torchvision", "PIL", "scipy", "cv2")


def imported_modules(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports (at any depth of the file)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_page_imports_no_computing_library(page: Path) -> None:
    assert not imported_modules(page) & set(FORBIDDEN), f"{page.name} computes: move it into segdemo"


def test_the_check_sees_an_import() -> None:
    """The checker itself finds a forbidden import (so a pass means something)."""
    assert "torch" in imported_modules(REPO / "segdemo" / "labs" / "model_inputs.py")
