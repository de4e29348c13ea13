"""Does tuning the text tower's last block with the head help, as tuning the image tower's
does? The same head on the same item vectors of one backbone, the image half frozen, the text
half either the precomputed text vector or recomputed, and trained, through the text tower's
last block (its end-of-text token attending to the tokens before it, as the tower pools), in
the last epochs; several seeds, scored on the Mango split by the learned space alone.

    .venv/bin/python benchmarks/text_tuning.py --backbone var/backbones/outfits-tiny.safetensors \\
        [--split var/mango-split] [--seeds 0 1] [--tuned-epochs 0 8] [--results F.json]
"""

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.head_loss import FrozenStudy, study_arguments  # noqa: E402
from embeddings.engine.backbone import load_backbone  # noqa: E402
from embeddings.engine.train import (  # noqa: E402
    HeadTrainingConfig,
    ItemEncoder,
    train_compatibility_head,
)


class TextTowerTop(nn.Module):
    """The text tower's last block, final norm and projection, from its end-of-text token."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.block = copy.deepcopy(model.transformer.resblocks[-1])
        self.ln_final = copy.deepcopy(model.ln_final)
        self.proj = nn.Parameter(model.text_projection.detach().clone())

    def forward(self, tokens: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        rows = torch.arange(len(tokens))
        normed = self.block.ln_1(tokens)
        after_end = torch.arange(tokens.shape[1])[None] > end[:, None]  # the causal mask's row
        attended = self.block.attn(
            normed[rows, end][:, None],
            normed,
            normed,
            key_padding_mask=after_end,
            need_weights=False,
        )[0]
        x = tokens[rows, end][:, None] + self.block.ls_1(attended)
        x = x + self.block.ls_2(self.block.mlp(self.block.ln_2(x)))
        return self.ln_final(x[:, 0]) @ self.proj


@torch.inference_mode()
def text_trunk(model: nn.Module, tokenizer, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Every text's tokens after all but the tower's last block (float16), and the place of
    its end-of-text token."""
    tokens, ends = [], []
    for start in range(0, len(texts), 512):
        ids = tokenizer(texts[start : start + 512])
        x = model.token_embedding(ids) + model.positional_embedding
        for block in model.transformer.resblocks[:-1]:
            x = block(x, attn_mask=model.attn_mask)
        tokens.append(x.half())
        ends.append(ids.argmax(dim=-1))
    return torch.cat(tokens), torch.cat(ends)


class TextTuned(ItemEncoder):
    """Item vectors whose text half comes through the tuned text top (trained by
    train_compatibility_head as it trains an image top: the `image_top` slot)."""

    def __init__(self, vectors: np.ndarray, top: TextTowerTop, tokens, ends, text_from: int):
        super().__init__(vectors)
        self.image_top = top  # type: ignore[assignment]
        self.text_tokens, self.ends, self.text_from = tokens, ends, text_from

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        text = self.image_top(self.text_tokens[rows].float(), self.ends[rows])  # type: ignore[misc]
        fixed = self.fixed[rows, : self.text_from]
        return torch.cat([fixed, nn.functional.normalize(text, dim=-1)], dim=1)


def main() -> None:
    parser = study_arguments(__doc__.splitlines()[0], "text_tuning.json")
    parser.add_argument("--tuned-epochs", type=int, nargs="+", default=[0, 8])
    arguments = parser.parse_args()
    study = FrozenStudy.load(arguments)
    vectors = study.vectors
    backbone = load_backbone("outfits-tiny", str(arguments.backbone))
    model = backbone.model.eval()
    tokens, ends = text_trunk(model, backbone.tokenizer, study.texts)
    text_from = vectors.shape[1] // 2
    with torch.no_grad():  # the split tower gives the tower's own text vectors
        check = nn.functional.normalize(TextTowerTop(model)(tokens[:64].float(), ends[:64]), dim=-1)
    np.testing.assert_allclose(check.numpy(), vectors[:64, text_from:], atol=1e-3)

    rows = []
    for tuned_epochs in arguments.tuned_epochs:
        for seed in arguments.seeds:
            config = HeadTrainingConfig(seed=seed, image_tower_epochs=tuned_epochs)
            items = (
                TextTuned(vectors, TextTowerTop(model), tokens, ends, text_from)
                if tuned_epochs
                else ItemEncoder(vectors)
            )
            started = time.perf_counter()
            head, _ = train_compatibility_head(items, study.train, study.codes, config)
            seconds = time.perf_counter() - started
            with torch.no_grad():
                encoded = items(torch.arange(len(vectors))).numpy()
            row = {"tuned_text_epochs": tuned_epochs, "seed": seed, "seconds": round(seconds, 1)}
            rows.append(row | study.figures(study.space(head, encoded)))
            print(json.dumps(rows[-1]), flush=True)
    arguments.results.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
