"""Embedding throughput on this CPU: the project's image encoder (embeddings.engine.encode) against
plain open_clip eager float32, the baseline a user would otherwise write, in one run, for the
offline backbone and for ViT-B-32 (random weights: the same speed as trained ones).

    .venv/bin/python benchmarks/embedding.py [--backbones outfits-tiny,ViT-B-32]
        [--images 2048,512] [--batches 8,32,64] [--pretrain-epochs 1]

Images: the Mango catalog's photos (../shared/datasets/mango/images, 239×334 JPEGs) when
present, else generated JPEGs of that size. The baseline decodes each image with Pillow,
applies the backbone's preprocessing and calls `model.encode_image` in float32, at batch 1 and
at each of --batches (its best is reported). The project's encoder is `encode_images` as
training calls it: large JPEGs decoded at a reduced scale (still twice the model's input), in
a thread while the model runs, and a bfloat16 copy of the image tower where the CPU computes
bfloat16 natively. Reported per backbone: images/s, the speed-up over the baseline at batch 1 and at
its best batch, GFLOP/s against the CPU's peak, and the cosine of the project's vectors to the
baseline's (target ≥ 0.99).

FITB must not drop: with the Mango data, the offline backbone is first pretrained for
--pretrain-epochs on Mango's image–title pairs, then fill-in-the-blank questions from Mango's
outfits are answered by the cosine of raw image vectors, once with the baseline's vectors and
once with the project's.
"""

import argparse
import csv
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from embeddings.engine.backbone import Backbone, create_untrained_backbone  # noqa: E402
from embeddings.engine.encode import encode_images, input_side, native_bfloat16  # noqa: E402
from embeddings.engine.evaluate import evaluate_tasks, make_tasks  # noqa: E402
from embeddings.engine.pretrain import PretrainingConfig, pretrain_contrastive  # noqa: E402

MANGO = ROOT.parent / "shared" / "datasets" / "mango"
TARGET_SPEED_UP, TARGET_COSINE = 2.0, 0.99


def mango_images() -> list[Path]:
    if not (MANGO / "products.csv").is_file():
        return []
    with open(MANGO / "products.csv", newline="") as rows:
        paths = [MANGO / row["des_filename"] for row in csv.DictReader(rows)]
    return [path for path in paths if path.is_file()]


def generated_images(count: int, folder: Path) -> list[Path]:
    """Smooth random 239×334 pictures saved as JPEG (noise would not compress like photos)."""
    rng = np.random.default_rng(0)
    paths = []
    for number in range(count):
        small = rng.integers(0, 256, size=(12, 9, 3), dtype=np.uint8)
        picture = Image.fromarray(small).resize((239, 334), Image.Resampling.BICUBIC)
        paths.append(folder / f"{number:05d}.jpg")
        picture.save(paths[-1], quality=90)
    return paths


@torch.inference_mode()
def baseline_vectors(backbone: Backbone, paths: list[Path], batch: int) -> np.ndarray:
    """Plain open_clip: decode, preprocess, encode_image in float32, `batch` at a time."""
    model = backbone.model.eval()
    chunks = []
    for start in range(0, len(paths), batch):
        images = []
        for path in paths[start : start + batch]:
            with Image.open(path) as image:
                images.append(backbone.preprocess(image.convert("RGB")))
        chunks.append(model.encode_image(torch.stack(images)).float())
    return torch.nn.functional.normalize(torch.cat(chunks), dim=-1).numpy()


def images_per_second(encode, paths: list[Path]) -> tuple[float, np.ndarray]:
    encode(paths[: min(16, len(paths))])  # warm-up: allocations, oneDNN kernels
    started = time.perf_counter()
    vectors = encode(paths)
    return len(paths) / (time.perf_counter() - started), vectors


def flops_per_image(backbone: Backbone) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    side = input_side(backbone.model.visual)
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        backbone.model.visual(torch.zeros(1, 3, side, side))
    return float(counter.get_total_flops())


def cpu() -> tuple[str, float, int]:
    """The CPU's name, clock (GHz) and float32 FLOP per cycle and core: 32 for AMD's AVX-512
    (two 256-bit FMA pipes), 64 for Intel's (two 512-bit), 32 for AVX2."""
    info = Path("/proc/cpuinfo").read_text()
    name = next(line.split(":", 1)[1].strip() for line in info.splitlines() if "model name" in line)
    clock = max(float(line.split(":")[1]) for line in info.splitlines() if "cpu MHz" in line)
    flop = 64 if "avx512f" in info and "Intel" in name else 32
    return name, clock / 1000, flop


def measure(name: str, paths: list[Path], batches: list[int]) -> dict:
    backbone = create_untrained_backbone(name)
    print(f"\n== {name}: {len(paths)} images ==", flush=True)
    runs = {}
    for batch in [1, *batches]:
        runs[batch], vectors = images_per_second(
            lambda p, b=batch: baseline_vectors(backbone, p, b), paths
        )
        print(f"  baseline float32, batch {batch}: {runs[batch]:.1f} images/s", flush=True)
        if batch == 1:
            reference = vectors
    best_batch = max(batches, key=runs.__getitem__)
    project_fp32, _ = images_per_second(
        lambda p: encode_images(backbone, p, precision="float32"), paths
    )
    print(f"  project encoder, float32: {project_fp32:.1f} images/s", flush=True)
    project, vectors = images_per_second(lambda p: encode_images(backbone, p), paths)
    print(f"  project encoder (auto: bfloat16 {native_bfloat16()}): {project:.1f}", flush=True)
    cosines = (vectors * reference).sum(axis=1)
    return {
        "backbone": name,
        "images": len(paths),
        "baseline_batch_1": round(runs[1], 1),
        "baseline_best": round(runs[best_batch], 1),
        "baseline_best_batch": best_batch,
        "project_float32": round(project_fp32, 1),
        "project": round(project, 1),
        "bfloat16": native_bfloat16(),
        "gflop_per_image": flops_per_image(backbone) / 1e9,
        "cosine_min": float(cosines.min()),
        "cosine_mean": float(cosines.mean()),
    }


def mango_fitb(epochs: int, paths: list[Path]) -> dict:
    """FITB of raw image vectors on Mango's outfits: the baseline's against the project's, from
    the offline backbone pretrained `epochs` on Mango's image–title pairs."""
    with open(MANGO / "products.csv", newline="") as rows:
        products = [row for row in csv.DictReader(rows)]
    by_path = {MANGO / p["des_filename"]: p for p in products}
    products = [by_path[path] for path in paths]
    skus = [p["cod_modelo_color"] for p in products]
    captions = [f"{p['des_color_specification_esp']} {p['des_product_family']}" for p in products]
    backbone = create_untrained_backbone()
    started = time.perf_counter()
    pretrain_contrastive(backbone, paths, captions, PretrainingConfig(epochs=epochs))
    pretrain_s = time.perf_counter() - started
    outfits: dict[str, list[str]] = {}
    with open(MANGO / "outfits.csv", newline="") as rows:
        for row in csv.DictReader(rows):
            outfits.setdefault(row["outfit_id"], []).append(row["sku"])
    category_of = {sku: p["des_product_family"] for sku, p in zip(skus, products, strict=True)}
    known = [[s for s in outfit if s in category_of] for outfit in outfits.values()]
    fitb, _ = make_tasks(known, category_of, np.random.default_rng(0))
    answers = {}
    for label, vectors in [
        ("baseline", baseline_vectors(backbone, paths, 64)),
        ("project_float32", encode_images(backbone, paths, precision="float32")),
        ("project", encode_images(backbone, paths)),
    ]:
        result = evaluate_tasks(dict(zip(skus, vectors, strict=True)), fitb)
        answers[label] = result.fitb_accuracy
        print(f"  FITB, {label} vectors: {result.fitb_accuracy:.4f}", flush=True)
    return {
        "pretrain_epochs": epochs,
        "pretrain_s": round(pretrain_s),
        "questions": len(fitb),
        "fitb_baseline": answers["baseline"],
        "fitb_project_float32": answers["project_float32"],
        "fitb_project": answers["project"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", default="outfits-tiny,ViT-B-32")
    parser.add_argument("--images", default="2048,512", help="per backbone")
    parser.add_argument("--batches", default="8,32,64")
    parser.add_argument("--pretrain-epochs", type=int, default=1, help="0: no FITB check")
    options = parser.parse_args()
    names, counts = options.backbones.split(","), [int(n) for n in options.images.split(",")]
    batches = [int(n) for n in options.batches.split(",")]
    real = mango_images()
    with tempfile.TemporaryDirectory() as folder:
        if real:
            source = f"Mango photos ({MANGO})"
        else:
            print("../shared/datasets/mango is absent: generated JPEGs, no FITB check")
            real, source = generated_images(max(counts), Path(folder)), "generated JPEGs"
        results = [measure(n, real[:c], batches) for n, c in zip(names, counts, strict=True)]
        fitb = (
            mango_fitb(options.pretrain_epochs, real)
            if options.pretrain_epochs and source.startswith("Mango")
            else None
        )
    name, clock, flop = cpu()
    cores = torch.get_num_threads()
    peak = cores * clock * flop
    print(
        f"\n{datetime.now(UTC):%Y-%m-%d %H:%M UTC} · {name} · {cores} cores at {clock:.2f} GHz "
        f"· torch {torch.__version__} · {source}\n"
        f"peak: {peak:.0f} GFLOP/s float32 ({flop} FLOP/cycle/core), {2 * peak:.0f} bfloat16"
    )
    print(
        "\n| backbone | GFLOP/image | baseline b1 img/s | baseline best (batch) | project fp32 | "
        "project | × b1 | × best | GFLOP/s (% of peak): baseline best, project | "
        "cosine min / mean |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        achieved = r["project"] * r["gflop_per_image"]
        baseline = r["baseline_best"] * r["gflop_per_image"]
        share = achieved / (2 * peak if r["bfloat16"] else peak)
        print(
            f"| {r['backbone']} | {r['gflop_per_image']:.2f} | {r['baseline_batch_1']} | "
            f"{r['baseline_best']} ({r['baseline_best_batch']}) | {r['project_float32']} | "
            f"**{r['project']}** | {r['project'] / r['baseline_batch_1']:.2f}× | "
            f"**{r['project'] / r['baseline_best']:.2f}×** | {baseline:.0f} "
            f"({baseline / peak:.0%}), {achieved:.0f} ({share:.0%}) | "
            f"{r['cosine_min']:.4f} / {r['cosine_mean']:.4f} |"
        )
    for r in results:
        met = r["project"] / r["baseline_best"] >= TARGET_SPEED_UP and r["cosine_min"] >= 0.99
        print(
            f"- {r['backbone']}: {r['project'] / r['baseline_best']:.2f}× the baseline's best "
            f"batch, cosine ≥ {r['cosine_min']:.4f}: target (≥ {TARGET_SPEED_UP}×, cosine ≥ "
            f"{TARGET_COSINE}) {'met' if met else 'missed'}"
        )
    if fitb:
        accuracy = fitb["fitb_baseline"]
        standard_error = (accuracy * (1 - accuracy) / fitb["questions"]) ** 0.5
        print(
            f"- FITB on Mango ({fitb['questions']:,} questions, raw image vectors of the "
            f"offline backbone pretrained {fitb['pretrain_epochs']} epoch(s), "
            f"{fitb['pretrain_s']} s): baseline {fitb['fitb_baseline']:.4f}, project "
            f"{fitb['fitb_project']:.4f} (its float32 path {fitb['fitb_project_float32']:.4f}); "
            f"one standard error: {standard_error:.4f}"
        )


if __name__ == "__main__":
    main()
