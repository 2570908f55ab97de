"""Does the released model generalise or remember? Its scores on photos it trained on against
photos it never saw, with the same masks.

Seen: 92 photos of its training pool (``train_pool_256``, drawn with seed 0, listed in
``OUT/seen_photos.txt``); unseen: the 24 + 68 photos of Kodak24 and CBSD68. Both sets are
scored by ``pconv evaluate --no-baselines`` at 256x256 with the held-back odd-numbered NVIDIA
masks, every photo once per bucket x border cell, so the k-th pair of a cell has the same mask
in both sets. Per bucket: the seen minus unseen difference of the means, with a 95 % bootstrap
interval that resamples the pair index k (a seen and an unseen photo with their shared mask).
Nothing is trained or tuned. A set whose ``OUT/<set>.csv`` exists is not scored again.

    .venv/bin/python scripts/study_memorization.py --out docs/study/memorization
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import pandas as pd

from pconv_lightning.evaluation.command import main as evaluate
from pconv_lightning.study.photos import list_photos
from pconv_lightning.study.stats import BUCKETS, METRICS, paired_bootstrap

CACHE = Path.home() / ".cache" / "pconv_lightning"


def link_folder(files: list[Path], folder: Path) -> Path:
    """A folder of symbolic links to ``files`` (made anew)."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for path in files:
        (folder / path.name).symlink_to(path.resolve())
    return folder


def gap_table(seen: pd.DataFrame, unseen: pd.DataFrame) -> pd.DataFrame:
    """Per bucket and metric: seen mean, unseen mean, the difference and its interval."""
    rows = []
    for bucket in [*BUCKETS, "all"]:
        a = seen if bucket == "all" else seen[seen["bucket"] == bucket]
        b = unseen if bucket == "all" else unseen[unseen["bucket"] == bucket]
        if a.empty:
            continue
        a, b = a.sort_values("pair"), b.sort_values("pair")
        for metric in METRICS:
            diff, low, high = paired_bootstrap(
                a[metric].to_numpy()[None], b[metric].to_numpy()[None], a["k"].to_numpy()
            )
            rows.append(
                {
                    "bucket": bucket,
                    "metric": metric,
                    "pairs": len(a),
                    "seen": a[metric].mean(),
                    "unseen": b[metric].mean(),
                    "difference": diff,
                    "low": low,
                    "high": high,
                }
            )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", type=Path, default=Path("weights/reference_256.safetensors"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--masks", type=Path, default=CACHE / "masks" / "nvidia_eval_odd")
    parser.add_argument("--count", type=int, default=92)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    pool = list_photos(args.data / "train_pool_256")
    seen_files = sorted(random.Random(0).sample(pool, args.count))
    (args.out / "seen_photos.txt").write_text(
        "".join(f"{p.relative_to(args.data).as_posix()}\n" for p in seen_files)
    )
    unseen_files = [
        p for name in ("eval_kodak24", "eval_cbsd68") for p in list_photos(args.data / name)
    ]
    if len(unseen_files) != args.count:
        raise SystemExit(
            f"expected {args.count} Kodak24 + CBSD68 photos, found {len(unseen_files)}"
        )
    work = CACHE / "study" / "memorization"
    scores = {}
    for name, files in (("seen", seen_files), ("unseen", unseen_files)):
        done = args.out / f"{name}.csv"
        if done.is_file():  # scored by an earlier run: a stopped run resumes with the other set
            print(f"{name}: {done} is there, not scored again")
            scores[name] = pd.read_csv(done, dtype={"bucket": str})
            continue
        folder = link_folder(files, work / name)
        code = evaluate(
            [
                f"--checkpoint=reference={args.weights}",
                f"--images={folder}",
                f"--masks={args.masks}",
                f"--size={args.size}",
                f"--per-cell={args.count}",
                "--no-baselines",
                "--device=cpu",
                "--no-progress",
                f"--out={work / f'eval_{name}'}",
            ]
        )
        if code:
            raise SystemExit(f"pconv evaluate failed on the {name} photos")
        frame = pd.read_csv(work / f"eval_{name}" / "per_image.csv", dtype={"bucket": str})
        frame["k"] = frame.groupby(["bucket", "border"]).cumcount()  # the pair's index in its cell
        frame.to_csv(args.out / f"{name}.csv", index=False, float_format="%.6f")
        scores[name] = frame
    table = gap_table(scores["seen"], scores["unseen"])
    table.to_csv(args.out / "gap.csv", index=False, float_format="%.6f")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


if __name__ == "__main__":
    main()
