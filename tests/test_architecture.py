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
        "import outfits.urls, outfits.outfit_rows, shop.views, outfits.api.views\n"
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


# Which package may import which. Lowest first: the engine (no site at all), the catalog, the
# model's glue, the outfits app and project (recommendations, API, admin), the shop's pages.
MAY_IMPORT = {
    "catalog": {"embeddings.engine"},
    "embeddings": {"catalog", "embeddings.engine"},
    "outfits": {"catalog", "embeddings"},
    "shop": {"catalog", "embeddings", "outfits"},
}
# The deliberate exceptions, each with its reason (docs/architecture.md names them too).
EXCEPTIONS = {
    # The training labels are stylists' outfits: the model's glue reads them.
    ("embeddings", "outfits.models"),
    # Background work at lower CPU priority, a helper of the whole site.
    ("embeddings", "outfits.cpu_priority"),
    # The project's URLconf routes every app's pages, the shop's too.
    ("outfits.urls", "shop"),
}


def package_of(module: str) -> str:
    return "embeddings.engine" if module.startswith("embeddings.engine") else module.split(".")[0]


def test_packages_import_only_the_layers_below_them():
    wrong = []
    for package, allowed in MAY_IMPORT.items():
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            if package_of(module) == "embeddings.engine":
                continue  # the engine is checked above: nothing of the site at all
            for name in imported_modules(path):
                target = package_of(name)
                if target not in MAY_IMPORT or target == package_of(module):
                    continue  # a library, or its own package
                excepted = any(
                    module.startswith(who) and name.startswith(what) for who, what in EXCEPTIONS
                )
                if target not in allowed and not excepted:
                    wrong.append(f"{module} imports {name}")
    assert not wrong, "\n".join(wrong)
