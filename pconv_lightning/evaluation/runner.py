"""Running every method on every pair, batch by batch, and collecting per-image scores.

One pair of each hole-ratio bucket (the b-th of bucket b, so the images vary) is kept as an example (input, every method's
composite, ground truth) for the report's image grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm import tqdm

from pconv_lightning.evaluation.methods import InpaintingMethod
from pconv_lightning.evaluation.pairs import Pair, PairDataset
from pconv_lightning.evaluation.scores import FID, fid_unavailable, image_scores, lpips_or_reason


@dataclass
class Example:
    """One pair shown in the grid; tensors ``(3, S, S)`` / ``(1, S, S)`` on the CPU."""

    pair: Pair
    image: Tensor
    mask: Tensor
    outputs: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class Evaluation:
    """Per-image rows (one per method x pair), examples by bucket, run-level FID and notes."""

    rows: list[dict[str, Any]]
    examples: dict[int, Example]
    fid: dict[str, float]
    notes: list[str]


def evaluate(
    pairs: list[Pair],
    methods: list[InpaintingMethod],
    size: int,
    batch_size: int = 8,
    device: str | torch.device = "cpu",
    num_workers: int = 0,
    progress: bool = True,
) -> Evaluation:
    """Score every method on every pair (in pair order, so runs are reproducible)."""
    if batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {batch_size}")
    names = [m.name for m in methods]
    if len(set(names)) != len(names):
        raise ValueError(f"method names must be unique, got {names}")
    (lpips, no_lpips), no_fid = lpips_or_reason(device), fid_unavailable()
    notes = [note for note in (no_lpips, no_fid) if note]
    fids = {} if no_fid else {name: FID(device) for name in names}
    in_bucket: dict[int, list[int]] = {}
    for pair in pairs:
        in_bucket.setdefault(pair.bucket, []).append(pair.index)
    shown = {b: indices[b % len(indices)] for b, indices in in_bucket.items()}
    examples: dict[int, Example] = {}
    rows: list[dict[str, Any]] = []
    loader = DataLoader(
        PairDataset(pairs, size), batch_size=batch_size, shuffle=False, num_workers=num_workers
    )
    bar = tqdm(total=len(pairs) * len(methods), desc="evaluate", unit="img", disable=not progress)
    for image, mask, index in loader:
        image, mask = image.to(device), mask.to(device)
        batch = [pairs[i] for i in index.tolist()]
        for row, pair in enumerate(batch):
            if shown[pair.bucket] == pair.index:
                examples[pair.bucket] = Example(pair, image[row].cpu(), mask[row].cpu())
        target = None if lpips is None else lpips.features(image)  # shared by the methods
        for method in methods:
            comp = method(image, mask)
            scores = image_scores(comp, image, mask)
            if target is not None:
                scores["lpips"] = lpips.distance(comp, target).double().cpu()
            if method.name in fids:
                fids[method.name].update(comp, image)
            for row, pair in enumerate(batch):
                rows.append(
                    {
                        "method": method.name,
                        "pair": pair.index,
                        "image": pair.image.name,
                        "mask": pair.mask.name,
                        "hole_ratio": pair.hole_ratio,
                        "bucket": pair.bucket,
                        "touches_border": pair.touches_border,
                        **{k: float(v[row]) for k, v in scores.items()},
                    }
                )
                if pair.bucket in examples and examples[pair.bucket].pair is pair:
                    examples[pair.bucket].outputs[method.name] = comp[row].cpu()
            bar.update(len(batch))
    bar.close()
    return Evaluation(rows, examples, {k: f.compute() for k, f in fids.items()}, notes)
