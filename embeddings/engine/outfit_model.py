"""The outfit-level model's forward pass, in numpy: what web processes run (they never import
torch). It reads an outfit as a whole, as OutfitTransformer does (Sarkar et al., 2023): a small
transformer over the outfit's item vectors, each tagged with its category, plus one *target*
token naming the category of the item wanted; the target token's output is the item the outfit
asks for. Here that output is a correction to the type-aware query (the mean of the anchors'
pair-weighted vectors), so an untrained model scores exactly as the type-aware one and training
learns only what the pairs miss: an outfit's items speaking to each other.

outfit_training.py trains the same network in torch and hands its weights here
(`OutfitModel.from_state`); tests check the two forward passes agree."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

UNKNOWN_CATEGORY = 0  # the category embedding of a category the model never saw


@dataclass(frozen=True)
class OutfitModelShape:
    dim: int  # the item vectors' (and the model's) width
    layers: int = 2
    heads: int = 4
    hidden: int = 256  # the feed-forward layer's width


@dataclass
class OutfitModel:
    """The weights (numpy, float32) and the categories they were trained on."""

    shape: OutfitModelShape
    categories: list[str]  # category_embedding's rows 1..: row 0 is "unknown"
    weights: dict[str, np.ndarray]

    def __post_init__(self) -> None:
        self.category_code = {name: code + 1 for code, name in enumerate(self.categories)}

    def codes(self, categories: Sequence[str]) -> np.ndarray:
        return np.array(
            [self.category_code.get(c, UNKNOWN_CATEGORY) for c in categories], dtype=np.int64
        )

    def corrections(
        self, anchors: np.ndarray, anchor_codes: np.ndarray, target_codes: np.ndarray
    ) -> np.ndarray:
        """(B, n, d) anchor vectors and (B, n) their category codes, (B,) the wanted categories
        → (B, d): what each outfit adds to its type-aware query."""
        w = self.weights
        batch, count, dim = anchors.shape
        tokens = np.empty((batch, count + 1, dim), dtype=np.float32)
        tokens[:, :count] = _linear(anchors, w["item_in"]) + w["category"][anchor_codes]
        tokens[:, count] = w["target"] + w["category"][target_codes]
        for layer in range(self.shape.layers):
            p = f"layer{layer}."
            tokens = tokens + self._attention(_layer_norm(tokens, w, p + "norm1"), p)
            hidden = _gelu(
                _linear(_layer_norm(tokens, w, p + "norm2"), w[p + "ff1"], w[p + "ff1_bias"])
            )
            tokens = tokens + _linear(hidden, w[p + "ff2"], w[p + "ff2_bias"])
        return _layer_norm(tokens[:, count], w, "out_norm") @ w["out"]

    def _attention(self, tokens: np.ndarray, prefix: str) -> np.ndarray:
        w, heads = self.weights, self.shape.heads
        batch, count, dim = tokens.shape
        head_dim = dim // heads
        qkv = _linear(tokens, w[prefix + "qkv"], w[prefix + "qkv_bias"])
        qkv = qkv.reshape(batch, count, 3, heads, head_dim)
        query, key, value = qkv[:, :, 0], qkv[:, :, 1], qkv[:, :, 2]  # (B, n, h, hd)
        # Outfits are a handful of items: products summed by broadcasting beat batched matmuls
        # of tiny matrices.
        logits = (query[:, :, None] * key[:, None]).sum(axis=-1) / np.sqrt(head_dim)  # B,q,k,h
        logits -= logits.max(axis=2, keepdims=True)
        attention = np.exp(logits)
        attention /= attention.sum(axis=2, keepdims=True)
        mixed = (attention[..., None] * value[:, None]).sum(axis=2)  # (B, q, h, hd)
        return _linear(
            mixed.reshape(batch, count, dim), w[prefix + "proj"], w[prefix + "proj_bias"]
        )

    def borrowing(self, fallbacks: Mapping[str, str]) -> "OutfitModel":
        """The model with each new category embedded as the known one it stands in for."""
        new = {c: f for c, f in fallbacks.items() if c not in self.category_code}
        new = {c: f for c, f in new.items() if f in self.category_code}
        if not new:
            return self
        embedding = self.weights["category"]
        rows = [embedding[self.category_code[f]] for f in new.values()]
        weights = dict(self.weights, category=np.concatenate([embedding, np.stack(rows)]))
        return OutfitModel(self.shape, [*self.categories, *new], weights)

    def save(self, path: Path) -> None:
        arrays: dict[str, np.ndarray] = {
            "__shape__": np.array(
                [self.shape.dim, self.shape.layers, self.shape.heads, self.shape.hidden]
            ),
            "__categories__": np.array(self.categories, dtype=str),
            **self.weights,
        }
        np.savez(path, **arrays)  # type: ignore[arg-type]  # names as keywords

    @classmethod
    def load(cls, path: Path) -> "OutfitModel":
        with np.load(path, allow_pickle=False) as saved:
            dim, layers, heads, hidden = (int(v) for v in saved["__shape__"])
            categories = [str(c) for c in saved["__categories__"]]
            weights = {
                name: saved[name].astype(np.float32)
                for name in saved.files
                if not name.startswith("__")
            }
        return cls(OutfitModelShape(dim, layers, heads, hidden), categories, weights)


def _linear(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    """x @ weight (+ bias) over the last axis, as one 2-D product (numpy runs a stack of
    small ones slowly)."""
    flat = x.reshape(-1, x.shape[-1]) @ weight
    if bias is not None:
        flat += bias
    return flat.reshape(*x.shape[:-1], weight.shape[1])


def _layer_norm(x: np.ndarray, weights: Mapping[str, np.ndarray], name: str) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + 1e-5) * weights[name] + weights[name + "_bias"]


def _gelu(x: np.ndarray) -> np.ndarray:
    """The tanh approximation (torch's GELU(approximate="tanh")): no erf in numpy."""
    return 0.5 * x * (1 + np.tanh(0.7978845608028654 * (x + 0.044715 * x**3)))
