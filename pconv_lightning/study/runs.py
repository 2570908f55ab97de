"""One run of a study: train an arm with one seed, score it on the study's pairs, keep the
result as small files.

Training goes to ``RUNS/ARM/seedS/`` (checkpoints, CSV log: outside the work tree); the result
goes to ``OUT/scores/``, small enough to commit as each run finishes:

- ``ARM_seedS.csv``: every pair's PSNR, SSIM, L1, hole L1 and LPIPS (what the report reads);
- ``ARM_seedS.json``: the run's configs, seed, steps, images and training wall time;
- ``ARM_seedS_curve.csv``: the validation metrics logged while training (learning curves);
- ``ARM_seedS_examples.png``: the run's composites of the six example pairs, one per bucket.

A run whose scores exist is done; a run with a ``last.ckpt`` short of the budget resumes from
it (``--ckpt_path``), so a stopped study loses at most the steps since that checkpoint.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import torch
from torchvision.utils import save_image

from pconv_lightning.evaluation.methods import NetworkMethod
from pconv_lightning.evaluation.pairs import Pair
from pconv_lightning.evaluation.runner import Evaluation, evaluate
from pconv_lightning.study.design import Arm, Study

SCORE_COLUMNS = ("pair", "image", "mask", "hole_ratio", "bucket", "touches_border")
CURVE_COLUMNS = ("step", "val/psnr", "val/ssim", "val/lpips", "val/l1_hole")


def run_dir(study: Study, arm: Arm, seed: int) -> Path:
    return study.runs / arm.name / f"seed{seed}"


def score_file(study: Study, arm: Arm, seed: int) -> Path:
    return study.out / "scores" / f"{arm.name}_seed{seed}.csv"


def trained_steps(checkpoint: Path) -> int:
    """The ``global_step`` stored in a Lightning checkpoint (loaded without pickle)."""
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["global_step"])


def budget_state(checkpoint: Path) -> dict:
    """The :class:`~pconv_lightning.callbacks.TrainingBudget` state saved in ``checkpoint``."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    for key, value in state.get("callbacks", {}).items():
        if key.startswith("TrainingBudget"):
            return value
    return {}


def fit_arguments(study: Study, arm: Arm, seed: int) -> list[str]:
    """The ``pconv fit`` command line of one run (without ``--ckpt_path``)."""
    return [
        f"--config={study.base}",
        *(f"--config={c}" for c in arm.configs),
        f"--seed_everything={seed}",
        f"--data.seed={seed}",
        f"--data.batch_size={study.batch_size}",
        f"--trainer.max_steps={study.max_steps}",
        f"--trainer.default_root_dir={run_dir(study, arm, seed)}",
        *study.fit_args,
    ]


def train(study: Study, arm: Arm, seed: int) -> Path:
    """Train (or finish training) one run; returns its ``last.ckpt``."""
    from pconv_lightning.training_cli import run  # imported here: `--help` stays fast

    checkpoint = run_dir(study, arm, seed) / "checkpoints" / "last.ckpt"
    resume = checkpoint.is_file()
    if resume and trained_steps(checkpoint) >= study.max_steps:
        return checkpoint
    run(
        [
            "fit",
            *fit_arguments(study, arm, seed),
            *([f"--ckpt_path={checkpoint}"] if resume else []),
        ]
    )
    if not checkpoint.is_file():
        raise RuntimeError(f"run {arm.name} seed {seed} wrote no {checkpoint}")
    steps = trained_steps(checkpoint)
    if steps < study.max_steps:
        raise RuntimeError(
            f"run {arm.name} seed {seed} stopped at step {steps} of {study.max_steps}; run the "
            "study again to resume it"
        )
    return checkpoint


def learning_curve(root: Path) -> pd.DataFrame:
    """Validation rows of every CSV log of a run (one folder per start), by step."""
    frames = [pd.read_csv(p) for p in sorted(root.glob("csv/version_*/metrics.csv"))]
    if not frames:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    log = pd.concat(frames, ignore_index=True)
    columns = [c for c in CURVE_COLUMNS if c in log.columns]
    if "val/psnr" not in log.columns:
        return pd.DataFrame(columns=list(CURVE_COLUMNS))
    rows = log.loc[log["val/psnr"].notna(), columns]
    return rows.drop_duplicates("step", keep="last").sort_values("step")


def score_rows(evaluation: Evaluation) -> pd.DataFrame:
    """The evaluation's per-pair rows, photo and mask by file name."""
    frame = pd.DataFrame(evaluation.rows).drop(columns="method")
    return frame


def save_examples(evaluation: Evaluation, name: str, path: Path) -> None:
    """The composites of the example pairs (bucket order) side by side, lossless."""
    tiles = [evaluation.examples[b].outputs[name] for b in sorted(evaluation.examples)]
    save_image(torch.stack(tiles), path, nrow=len(tiles), padding=0)


def save_example_inputs(evaluation: Evaluation, out: Path) -> None:
    """``examples_input.png`` (holes white) and ``examples_truth.png``, once per study."""
    examples = [evaluation.examples[b] for b in sorted(evaluation.examples)]
    holes = torch.stack([e.image * e.mask + (1 - e.mask) for e in examples])
    save_image(holes, out / "examples_input.png", nrow=len(examples), padding=0)
    save_image(
        torch.stack([e.image for e in examples]),
        out / "examples_truth.png",
        nrow=len(examples),
        padding=0,
    )


def score(study: Study, arm: Arm, seed: int, checkpoint: Path, pairs: list[Pair]) -> Path:
    """Evaluate one run on the study's pairs and write its result files; returns the CSV."""
    device = study.device or ("cuda" if torch.cuda.is_available() else "cpu")
    name = f"{arm.name}_seed{seed}"
    method = NetworkMethod(name, checkpoint, device)
    method.check_size(study.size)
    torch.manual_seed(0)
    evaluation = evaluate(
        pairs, [method], study.size, study.eval_batch_size, device, progress=False
    )
    scores = study.out / "scores"
    scores.mkdir(parents=True, exist_ok=True)
    save_examples(evaluation, name, scores / f"{name}_examples.png")
    if not (scores / "examples_input.png").is_file():
        save_example_inputs(evaluation, scores)
    root = run_dir(study, arm, seed)
    learning_curve(root).to_csv(scores / f"{name}_curve.csv", index=False)
    budget = budget_state(checkpoint)
    info = {
        "arm": arm.name,
        "seed": seed,
        "configs": [str(study.base), *map(str, arm.configs)],
        "fit_args": study.fit_args,
        "steps": trained_steps(checkpoint),
        "batch_size": study.batch_size,
        "images": sum(int(n) for n in budget.get("counts", {}).values()),
        "train_wall_seconds": round(float(budget.get("wall_seconds", 0.0)), 1),
        "scored": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "device": device,
    }
    (scores / f"{name}.json").write_text(json.dumps(info, indent=1) + "\n")
    target = score_file(study, arm, seed)
    partial = target.with_suffix(".csv.partial")
    score_rows(evaluation).to_csv(partial, index=False, float_format="%.6f")
    partial.replace(target)  # the CSV appears last: it marks the run as done
    return target
