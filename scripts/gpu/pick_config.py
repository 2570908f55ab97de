"""Choose the reference run's settings from benchmarks/gpu.py's table and print them as shell
assignments (``eval "$(python3 scripts/gpu/pick_config.py gpu_bench.json --seconds 1020)"``).

Rule: the fastest PConvUNet row at 256x256 in bf16-mixed; a compiled row only when it beats the
fastest eager one by ``--compile-gain`` (compiling costs about a minute, twice: stage 2
recompiles). lr = 2e-4 * sqrt(batch / 6) (the paper's 2e-4 at batch 6, square-root scaling),
at most 5e-4. Steps = ``--efficiency`` x measured rate x seconds / batch (data path, logging,
checkpoints and the concurrent mixed-precision proof cost the rest); stage 2 for the last fifth.
"""

from __future__ import annotations

import argparse
import json
import math


def pick(
    rows: list[dict], seconds: float, efficiency: float, compile_gain: float, size: int = 256
) -> dict:
    """The settings as a dict of shell variable names to values."""
    candidates = [
        r
        for r in rows
        if r["size"] == size and r["net"] == "pconv" and r["precision"] == "bf16-mixed"
    ]
    if not candidates:
        raise ValueError(f"no PConvUNet bf16-mixed row at size {size} in the table")
    eager = max((r for r in candidates if not r["compile"]), key=lambda r: r["images_per_s"])
    best = max(candidates, key=lambda r: r["images_per_s"])
    if best["compile"] and best["images_per_s"] < compile_gain * eager["images_per_s"]:
        best = eager
    batch, rate = best["batch"], best["images_per_s"]
    steps = int(efficiency * rate * seconds / batch)
    return {
        "BATCH": batch,
        "LR": f"{min(5e-4, 2e-4 * math.sqrt(batch / 6)):.2e}",
        "COMPILE": str(best["compile"]).lower(),
        "CL": str(best["channels_last"]).lower(),
        "RATE": rate,
        "MAX_STEPS": steps,
        "AT_STEP": int(0.8 * steps),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="gpu_bench.json")
    parser.add_argument("--seconds", type=float, default=1020)
    parser.add_argument("--efficiency", type=float, default=0.85)
    parser.add_argument("--compile-gain", type=float, default=1.15)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    with open(args.table) as f:
        rows = json.load(f)["rows"]
    for key, value in pick(
        rows, args.seconds, args.efficiency, args.compile_gain, args.size
    ).items():
        print(f"{key}={value}")


if __name__ == "__main__":
    main()
