"""Choose the reference run's settings from benchmarks/gpu.py's short table and print them as
shell assignments (``eval "$(python3 scripts/gpu/pick_config.py gpu_bench.json --seconds 550)"``).

``--seconds``: the window from now until the training (and the mixed-precision proof, when it
runs after the training) must have finished; the training's own time is that less
``--startup-s`` (imports, pack decode, init weights) and ``--exit-s`` (final export, exit).

Rules:

- Row: the fastest PConvUNet row at ``--size`` in bf16-mixed. A compiled row only when its
  rate over the training time left after compiling twice (stage 2 recompiles; the row's first
  step is the compile time) beats the fastest eager row by ``--compile-gain``.
- Rate: the step rate, or the data path alone if that is slower.
- Mixed-precision proof (benchmarks/mixed_precision.py, 3 x 300 steps at batch 8) during the
  training ("concurrent") only when the table shows room: (a) memory: the training row's peak
  plus the proof's estimate within 85% of the card; (b) processor: the data path alone feeds
  at least 1.3x the training rate, so the proof's loader workers take no images from the
  training; (c) GPU: the proof's arithmetic (its FLOPs at the row's achieved TFLOP/s, fp32 at
  a quarter of that) is at most half of ``--mp-alone-s``, the wall time it takes alone after the
  training. Otherwise "after": the training gets ``--mp-alone-s`` less.
- lr: from scratch 2e-4 * sqrt(batch / 6) (the paper's 2e-4 at batch 6, square-root scaling),
  at most 5e-4; from reference weights (``--init``) the paper's 2e-4: a continuation should not
  jump above the rate its weights were trained at.
- No table (the benchmark failed): ``FALLBACK``, so the training still starts.
- Steps: ``--efficiency`` x rate x training seconds / batch is the expected count; max_steps is
  ``--steps-margin`` times that, so max_time normally ends the run, and stage 2 starts at 4/5 of
  max_steps or at 4/5 of the training time (scripts/gpu/timed_stage2.py), whichever is first.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys

# When the benchmark left no usable table: the target rate, batch 32, eager, proof after.
FALLBACK = {
    "size": 256, "net": "pconv", "precision": "bf16-mixed", "batch": 32, "compile": False,
    "channels_last": True, "images_per_s": 300.0, "peak_gib": 0.0, "gflop_per_image": 181.3,
    "tflop_per_s": 54.4, "first_step_s": 0.0,
}  # fmt: skip


def mp_gpu_seconds(row: dict, steps: int = 300, batch: int = 8) -> float:
    """GPU-busy seconds of the proof: 16-mixed and bf16-mixed at the row's achieved rate,
    32-true at a quarter of it, ``steps`` steps of ``batch`` images each."""
    tflops = max(row["tflop_per_s"], 1e-6)
    gflop = steps * batch * row["gflop_per_image"]
    return gflop / 1e3 * (2 / tflops + 4 / tflops)


def mp_decision(
    row: dict, loader_rate: float | None, total_gib: float | None, mp_alone_s: float
) -> tuple[str, str]:
    """("concurrent" | "after", the reason)."""
    mp_gib = 2 * row["peak_gib"] * 8 / row["batch"] + 4  # fp32 activations at batch 8 + CUDA
    reasons = []
    if total_gib is not None and row["peak_gib"] + mp_gib > 0.85 * total_gib:
        reasons.append(f"memory: {row['peak_gib']} + ~{mp_gib:.0f} GiB > 85% of {total_gib}")
    if loader_rate is None or loader_rate < 1.3 * row["images_per_s"]:
        reasons.append(f"processor: data path {loader_rate} < 1.3 x {row['images_per_s']} images/s")
    gpu_s = mp_gpu_seconds(row)
    if gpu_s > 0.5 * mp_alone_s:
        reasons.append(f"GPU: ~{gpu_s:.0f} s of arithmetic > half of {mp_alone_s:.0f} s alone")
    if reasons:
        return "after", "; ".join(reasons)
    return (
        "concurrent",
        f"room: ~{gpu_s:.0f} GPU-s of {mp_alone_s:.0f} s alone, memory and loader ok",
    )


def pick(
    result: dict,
    seconds: float,
    init: bool = False,
    efficiency: float = 0.9,
    compile_gain: float = 1.05,
    mp_alone_s: float = 100.0,
    startup_s: float = 30.0,
    exit_s: float = 15.0,
    steps_margin: float = 1.3,
    size: int = 256,
    mp_mode: str = "auto",
) -> dict:
    """The settings as a dict of shell variable names to values."""
    rows = result["rows"]
    candidates = [
        r
        for r in rows
        if r["size"] == size and r["net"] == "pconv" and r["precision"] == "bf16-mixed"
    ]
    eager = [r for r in candidates if not r["compile"]]
    if not eager:
        raise ValueError(f"no eager PConvUNet bf16-mixed row at size {size} in the table")
    best = max(eager, key=lambda r: r["images_per_s"])
    loader = result.get("loader") or {}
    loader_rate = loader.get("images_per_s")
    mode, reason = mp_decision(best, loader_rate, result.get("total_gib"), mp_alone_s)
    if mp_mode == "skip":
        mode, reason = "skip", "set by MP_MODE: not run"
    elif mp_mode != "auto":
        mode, reason = mp_mode, f"set by MP_MODE ({reason})"
    train_s = seconds - startup_s - exit_s - (mp_alone_s if mode == "after" else 0.0)
    if mode == "after" and train_s < 120:  # a late start: the proof cannot wait its turn
        mode, reason = "concurrent", f"too little time to run it after ({reason})"
        train_s += mp_alone_s
    train_s = max(train_s, 60.0)
    # concurrent: the training loses about twice the proof's arithmetic (contention)
    contention = 2 * mp_gpu_seconds(best) if mode == "concurrent" else 0.0
    train_s_eff = max(train_s - contention, 0.5 * train_s)

    def rate(row: dict) -> float:
        return min(row["images_per_s"], 0.95 * loader_rate if loader_rate else math.inf)

    chosen, compile_s = best, 0.0
    for row in candidates:
        if row["compile"]:
            cost = 2 * row["first_step_s"]
            if rate(row) * (train_s_eff - cost) > compile_gain * rate(best) * train_s_eff:
                chosen, compile_s = row, cost
    batch = chosen["batch"]
    expected = int(efficiency * rate(chosen) * (train_s_eff - compile_s) / batch)
    max_steps = max(10, int(steps_margin * expected))
    lr = 2e-4 if init else min(5e-4, 2e-4 * math.sqrt(batch / 6))
    return {
        "BATCH": batch,
        "LR": f"{lr:.2e}",
        "COMPILE": str(chosen["compile"]).lower(),
        "CL": str(chosen["channels_last"]).lower(),
        "RATE": rate(chosen),
        "TRAIN_S": int(train_s),
        "EXPECTED_STEPS": expected,
        "MAX_STEPS": max_steps,
        "AT_STEP": int(0.8 * max_steps),
        "MP_MODE": mode,
        "MP_REASON": reason,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", help="gpu_bench.json")
    parser.add_argument("--seconds", type=float, default=550)
    parser.add_argument("--init", action="store_true", help="training starts from weights")
    parser.add_argument("--efficiency", type=float, default=0.9)
    parser.add_argument("--compile-gain", type=float, default=1.05)
    parser.add_argument("--mp-alone-s", type=float, default=100.0)
    parser.add_argument("--startup-s", type=float, default=30.0)
    parser.add_argument("--exit-s", type=float, default=15.0)
    parser.add_argument(
        "--mp-mode", choices=["auto", "concurrent", "after", "skip"], default="auto"
    )
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    settings = dict(
        init=args.init, efficiency=args.efficiency, compile_gain=args.compile_gain,
        mp_alone_s=args.mp_alone_s, startup_s=args.startup_s, exit_s=args.exit_s,
        size=args.size, mp_mode=args.mp_mode,
    )  # fmt: skip
    try:
        with open(args.table) as f:
            chosen = pick(json.load(f), args.seconds, **settings)
    except (OSError, ValueError, KeyError) as err:  # no usable table: train on the fallback
        print(f"warning: {args.table}: {err}; using the fallback row {FALLBACK}", file=sys.stderr)
        chosen = pick({"rows": [FALLBACK | {"size": args.size}]}, args.seconds, **settings)
    for key, value in chosen.items():
        print(f"{key}={shlex.quote(str(value))}")


if __name__ == "__main__":
    main()
