"""The boundaries the design relies on: the ML engine imports no Django, and web processes
serve matches without importing torch."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE = ROOT / "embeddings" / "engine"


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


ENGINE_NAMES = {path.stem for path in ENGINE.glob("*.py")} | {""}


def relative_imports(path: Path) -> set[str]:
    """`from .x import y` as "x"; `from .. import` (out of the engine) as "..": the engine's
    modules may import one another, nothing of the glue around them."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            names.add("." * (node.level - 1) + (node.module or ""))
    return names


def test_ml_engine_modules_import_no_django():
    """Every module in the engine's folder, a new one too: no Django, no app of the site."""
    modules = sorted(ENGINE.rglob("*.py"))
    assert len(modules) > 15
    for path in modules:
        django_imports = {
            n
            for n in imported_modules(path)
            if n.split(".")[0] in {"django", "rest_framework", "celery", "catalog", "outfits"}
            or (n.startswith("embeddings") and not n.startswith("embeddings.engine"))
        }
        assert not django_imports, f"{path.relative_to(ROOT)} imports {django_imports}"
        relative = {n for n in relative_imports(path) if n.split(".")[0] not in ENGINE_NAMES}
        assert not relative, f"{path.relative_to(ROOT)} reaches out of the engine: {relative}"


def test_web_process_serves_without_torch():
    code = (
        "import django, sys; django.setup()\n"
        "import outfits.urls, outfits.outfit_rows, catalog.views, outfits.api.views\n"
        "from django.contrib import admin; admin.autodiscover()\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'open_clip'})\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"DJANGO_SETTINGS_MODULE": "outfits.settings", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
