"""The README's first section, run as a newcomer types it: its bash blocks, parsed from
README.md, in order, in one shell, in a fresh copy of the checkout's tracked files.

What this does not cover: `make test` (this test is part of it, so that line is left out);
building `.venv` from nothing (the copy links the checkout's `.venv`, and the test is skipped
when that one is stale for the copy's lock files); the quick start's full budget
(`QUICKSTART_ARGS`, which the Makefile appends to its `pconv fit`, makes it 2 steps with 4
validation pairs instead of 60 steps and 24 pairs); and the VGG16 weights' download (derived
once into the user cache by `make`, found there)."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import missing_prerequisite
from training_helpers import REPO

SKIPPED = {"make test"}
TINY = (
    "--trainer.max_steps=2 --trainer.check_val_every_n_epoch=1 --trainer.val_check_interval=2"
    " --data.eval_repeats=1"
)


def first_section_commands(readme: str) -> list[str]:
    """The lines of the bash blocks of the README's first ``##`` section, continuation lines
    joined, comments and the lines of ``SKIPPED`` left out."""
    sections = re.split(r"^## ", readme, flags=re.M)
    blocks = re.findall(r"```bash\n(.*?)```", sections[1], flags=re.S)
    commands = []
    for line in "".join(blocks).replace("\\\n", " ").splitlines():
        command = line.split(" #")[0].strip()
        if command and not command.startswith("#") and command not in SKIPPED:
            commands.append(command)
    return commands


def _lock_hash(root: Path) -> str:
    files = ("requirements/lock.txt", "setup.cfg", "scripts/bootstrap.sh")
    return hashlib.sha256(b"".join((root / f).read_bytes() for f in files)).hexdigest()


def fresh_copy(dest: Path) -> Path:
    """The checkout's tracked files as they are now, and a link to its ``.venv``."""
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.split(b"\0")
    for name in filter(None, (t.decode() for t in tracked)):
        if (REPO / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, dest / name)
    (dest / ".venv").symlink_to(REPO / ".venv")
    return dest


def test_the_first_section_is_the_two_commands_and_their_follow_ups():
    commands = first_section_commands((REPO / "README.md").read_text())
    assert commands[0] == "make quickstart"
    assert "source .venv/bin/activate" in commands
    assert any(c.startswith("pconv test ") for c in commands)
    assert "make test" in (REPO / "README.md").read_text().split("\n## ")[1]


@pytest.mark.slow
def test_the_readme_first_section_runs_as_typed_in_a_fresh_copy(tmp_path):
    stamp = REPO / ".venv" / ".lock-hash"
    if not stamp.is_file() or stamp.read_text().split()[0] != _lock_hash(REPO):
        missing_prerequisite(".venv is stale for requirements/lock.txt: run `make venv` first")
    clone = fresh_copy(tmp_path / "clone")
    commands = first_section_commands((clone / "README.md").read_text())
    env = os.environ | {"QUICKSTART_ARGS": TINY, "PYTHONPATH": str(clone)}
    env.pop("VIRTUAL_ENV", None)
    script = "set -e\n" + "\n".join(commands) + "\n"
    done = subprocess.run(
        ["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    run = clone / "outputs" / "quickstart"
    table = (run / "val_before_after.md").read_text()
    assert "before training (step 0) and after it (step 2)" in table and table in done.stdout
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert "| all |" in (run / "test_metrics_by_bucket.md").read_text()
    assert "image_size: 256" in (run / "test" / "config.yaml").read_text()  # the run's size
    assert sorted(p.name for p in (run / "predictions").glob("*.png")) == [
        f"kodim{n}.png" for n in range(13, 17)
    ]
