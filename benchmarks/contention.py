"""Embedding beside another busy process: the project's image encoder (embeddings.engine.encode, as
training calls it) alone, then beside one process spinning a core, with torch's default
threads and with one thread. On 2 cores the fair share beside one busy process is half the
machine: a slowdown well beyond 2× means threads waiting on each other (OpenMP spinning
against the other process), which setting torch's threads from the CPUs the process may use
would cure.

    .venv/bin/python benchmarks/contention.py [--backbone ViT-B-32] [--images 256] [--repeats 3]

Each measurement is a fresh child process; the median of --repeats is reported, with the
ratio of each case to "alone" measured in the same run.
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPIN = "while True: pass"


def child(backbone_name: str, images: int, threads: int) -> None:
    """One measurement in this process: images/s of encode_images."""
    sys.path.insert(0, str(ROOT))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import torch

    if threads:
        torch.set_num_threads(threads)
    from embedding import generated_images, images_per_second

    from embeddings.engine.backbone import create_untrained_backbone
    from embeddings.engine.encode import encode_images

    backbone = create_untrained_backbone(backbone_name)
    paths = generated_images(images, Path(tempfile.mkdtemp(prefix="contention-")))
    rate, _ = images_per_second(lambda p: encode_images(backbone, p), paths)
    print(json.dumps({"images_per_second": rate, "threads": torch.get_num_threads()}))


def measure(arguments, threads: int, busy: bool) -> dict:
    spinner = subprocess.Popen([sys.executable, "-c", SPIN]) if busy else None
    try:
        time.sleep(0.5 if busy else 0)
        output = subprocess.run(
            [sys.executable, __file__, "--child", str(threads)]
            + ["--backbone", arguments.backbone, "--images", str(arguments.images)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()
    return json.loads(output.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="ViT-B-32")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.child is not None:
        child(arguments.backbone, arguments.images, arguments.child)
        return
    cpu = next(
        line.split(":", 1)[1].strip()
        for line in Path("/proc/cpuinfo").read_text().splitlines()
        if "model name" in line
    )
    print(
        f"# contention · {datetime.now(UTC):%Y-%m-%d %H:%M} UTC · {cpu} · {os.cpu_count()} "
        f"cores · Python {platform.python_version()} · {arguments.backbone}, "
        f"{arguments.images} images · median of {arguments.repeats}"
    )
    cases = [("alone", 0, False), ("beside a busy process", 0, True)]
    cases += [("beside a busy process, 1 torch thread", 1, True)]
    results = {}
    print("| case | torch threads | images/s | slowdown vs alone |")
    print("|---|---:|---:|---:|")
    for label, threads, busy in cases:
        runs = [measure(arguments, threads, busy) for _ in range(arguments.repeats)]
        rate = statistics.median(run["images_per_second"] for run in runs)
        results[label] = rate
        slowdown = results["alone"] / rate
        print(f"| {label} | {runs[0]['threads']} | {rate:.1f} | {slowdown:.2f}× |", flush=True)


if __name__ == "__main__":
    main()
