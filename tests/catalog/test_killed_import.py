"""A worker killed mid-import (SIGKILL, no chance to clean up) leaves whole chunks applied
and a job that resumes where it stopped."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
ROWS = 4000


def test_killed_import_is_consistent_and_resumes(tmp_path: Path, manage_py):
    env = {
        **os.environ,
        "OUTFITS_VAR_DIR": str(tmp_path / "var"),
        "OUTFITS_IMPORT_CHUNK_ROWS": "50",
        "DJANGO_SETTINGS_MODULE": "outfits.settings",
    }
    env.pop("DATABASE_URL", None)  # a SQLite file both processes can open
    manage_py(env, "migrate", "--noinput")
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    lines = ["sku,title,category,image"]
    for number in range(ROWS):  # distinct pictures, so every row decodes and stores an image
        Image.new("RGB", (64, 64), (number % 256, number // 256 % 256, 90)).save(
            pictures / f"{number}.png"
        )
        lines.append(f"S{number:05d},Shirt {number},Tops,{number}.png")
    (pictures / "catalog.csv").write_text("\n".join(lines) + "\n")

    importer = subprocess.Popen(
        [sys.executable, "manage.py", "import_catalog", str(pictures / "catalog.csv")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    database = sqlite3.connect(tmp_path / "var" / "db.sqlite3", timeout=10)
    deadline = time.monotonic() + 120
    committed = 0
    while time.monotonic() < deadline and committed < 300:
        row = database.execute("SELECT resume_after_line FROM catalog_importjob").fetchone()
        committed = row[0] if row else 0
        time.sleep(0.05)
    importer.send_signal(signal.SIGKILL)
    importer.wait()
    assert committed >= 300, "the import never got going"

    status, resume_after = database.execute(
        "SELECT status, resume_after_line FROM catalog_importjob"
    ).fetchone()
    products = database.execute("SELECT COUNT(*) FROM catalog_product").fetchone()[0]
    assert status == "running" and resume_after < ROWS + 1
    assert products == resume_after - 1  # exactly the rows of committed chunks: none half-done
    database.close()

    manage_py(env, "resume_import", "1")
    database = sqlite3.connect(tmp_path / "var" / "db.sqlite3")
    assert database.execute("SELECT COUNT(DISTINCT sku) FROM catalog_product").fetchone() == (ROWS,)
    assert database.execute(
        "SELECT status, created, rejected FROM catalog_importjob"
    ).fetchone() == ("succeeded", ROWS, 0)
    database.close()
