"""Wall time of ``pconv --help`` and of every ``pconv COMMAND --help``, each in a fresh
interpreter, median of repetitions, and whether it imported torch.

The tools (inpaint, export, app, ...) print their help without torch: target under 3 s. The
four Lightning commands (fit, validate, test, predict) build LightningCLI's parser from the
model and data classes, which imports torch and Lightning: measured, no target.

Run from the repository root: ``.venv/bin/python benchmarks/cli_help.py [--reps 5]``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pconv_lightning.cli import TOOLS, TRAINING  # noqa: E402  (stdlib only: no torch here)

TARGET_S = 3.0  # the tools' --help
PROBE = (
    "import sys; from pconv_lightning.cli import cli_main\n"
    "try:\n    cli_main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
    "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', file=sys.stderr)"
)


def help_run(command: list[str]) -> tuple[float, bool]:
    """Seconds for one ``pconv COMMAND --help`` in a new process, and whether torch loaded."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *command, "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    return time.perf_counter() - start, "NO-TORCH" not in done.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    reps = parser.parse_args().reps
    commands = [[], *([name] for name in TOOLS), *([name] for name in TRAINING)]
    times: dict[str, list[float]] = {" ".join(c) or "(none)": [] for c in commands}
    torch_loaded: dict[str, bool] = {}
    for _ in range(reps):  # alternate, so machine load drifts over all commands alike
        for command in commands:
            key = " ".join(command) or "(none)"
            seconds, loaded = help_run(command)
            times[key].append(seconds)
            torch_loaded[key] = loaded
    print(
        f"`pconv COMMAND --help`, fresh process, median of {reps} (tools: target < {TARGET_S} s)\n"
    )
    print("| command | median s | max s | imports torch | under target |")
    print("|---|---|---|---|---|")
    for key, values in times.items():
        median = statistics.median(values)
        verdict = "no target" if key in TRAINING else ("yes" if median < TARGET_S else "NO")
        print(f"| {key} | {median:.2f} | {max(values):.2f} | {torch_loaded[key]} | {verdict} |")


if __name__ == "__main__":
    main()
