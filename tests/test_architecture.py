"""The boundaries the design relies on: the ML engine imports no Django, and web processes
serve matches without importing torch."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINE_MODULES = [
    "artifacts",
    "backbone",
    "charts",
    "cooccurrence",
    "encode",
    "evaluate",
    "index",
    "layered",
    "category_probe",
    "photo",
    "pretrain",
    "progress",
    "refresh",
    "space",
    "text",
    "train",
    "triplets",
    "vector_cache",
]


def imported_modules(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_ml_engine_modules_import_no_django():
    for module in ENGINE_MODULES:
        django_imports = {
            n
            for n in imported_modules(ROOT / "embeddings" / f"{module}.py")
            if n.split(".")[0] in {"django", "rest_framework", "catalog", "outfits"}
        }
        assert not django_imports, f"embeddings/{module}.py imports {django_imports}"


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
