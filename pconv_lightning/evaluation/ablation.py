"""``pconv ablate`` (also ``experiments/ablate_masks.py``): compare training configurations with
seeds, the same budget and the same evaluation pairs, and report what the seeds' spread allows.

Arms are config files on top of a base config (any axis: network, loss weights, masks, data).
Every arm trains ``--seeds`` times with the seeds 0, 1, ... (``seed_everything`` and
``data.seed``: initial weights, data order and training masks all change), each run for
``--images-per-run`` images, and every run is scored on the same fixed pairs of
``--images`` x ``--masks``. Per arm, bucket and metric the report gives the mean over seeds and
the seeds' spread, and per arm against ``--reference`` the paired difference over the pairs with
a 95 % bootstrap interval (resampling photos and seeds): "A better" is printed only where the
interval excludes 0 (:mod:`pconv_lightning.study.stats`).

Examples::

    # the study: every option in one file (experiments/studies/proxy.yaml: a CPU proxy)
    pconv ablate --study experiments/studies/proxy.yaml
    # two mask generators, 2 seeds each, a tiny CPU budget on the shipped samples
    pconv ablate experiments/configs/masks_shapes.yaml experiments/configs/masks_boxes.yaml \\
        --base experiments/configs/quickstart.yaml --seeds 2 --images-per-run 80 \\
        --batch-size 4 --images data/samples/val --masks data/samples/eval_masks --size 128 \\
        --out outputs/ablation -- --trainer.logger=false
    # arms named by hand, one of several configs: NAME=CONFIG[+CONFIG...]
    pconv ablate pconv=experiments/studies/arms/pconv.yaml \\
        conv=experiments/studies/arms/conv_grey.yaml --reference pconv ...

Writes into ``--out``: ``scores/`` (each finished run's per-pair scores, info, learning curve and
example composites: small files to commit), ``report.md``, ``spread.csv``, ``paired.csv``,
``by_hole_ratio.png``, ``curves.png``, ``examples.png``; training runs go to ``--runs``
(default ``OUT/runs``; checkpoints and logs). Runs whose scores exist are not trained again, and
a run with a checkpoint short of its budget resumes from it: run the same command again after a
stop. ``--report-only`` rewrites the report from ``scores/`` alone. ``--only ARM ...`` trains and
scores only those arms, so that several processes (one per GPU or per core) can share a study, each
with its own arms; two processes must not name the same arm.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pconv_lightning.errors import ConfigError, InputError, MissingInputError
from pconv_lightning.study.design import (
    Study,
    arm_from_text,
    arms_from_mapping,
    read_study_file,
)

DEFAULTS: dict[str, Any] = {
    "seeds": 2,
    "images_per_run": None,
    "batch_size": None,
    "size": 256,
    "eval_batch_size": 16,
    "reference": None,
    "title": "Comparison",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pconv ablate",
        description=__doc__.split("\n")[0],
        epilog="Arguments after -- go to every `pconv fit` run unchanged (after fit_args).",
    )
    add = parser.add_argument
    add(
        "arms", nargs="*", help="[NAME=]CONFIG[+CONFIG...] on top of --base (or `arms:` in --study)"
    )
    add("--study", type=Path, help="a study file: these options and `arms:` as YAML")
    add("--base", type=Path, help="the base experiment config")
    add("--seeds", type=int, help="runs per arm (seeds 0..N-1) where an arm names none (2)")
    add("--images-per-run", type=int, help="training images of every run")
    add("--batch-size", type=int, help="training batch size of every run")
    add("--reference", help="the arm every other is compared with (default: the first)")
    add("--images", type=Path, help="evaluation image folder")
    masks = parser.add_mutually_exclusive_group()
    masks.add_argument("--masks", type=Path, help="evaluation mask folder (manifest.csv)")
    masks.add_argument("--builtin-masks", type=int, metavar="N", help="seeded set, N per cell")
    add("--size", type=int, help="evaluation size (256)")
    add("--per-cell", type=int, help="pairs per bucket x border cell (default: #images)")
    add("--limit", type=int, help="at most N evaluation images")
    add("--eval-batch-size", type=int, help="evaluation batch size (16)")
    add("--device", help="evaluation device (default: cuda if available)")
    add("--out", type=Path, help="report folder (scores/ in it is the study's record)")
    add("--runs", type=Path, help="training runs folder (default: OUT/runs)")
    add("--title", help="the report's title")
    add("--report-only", action="store_true", help="write the report from OUT/scores only")
    add(
        "--only",
        nargs="+",
        metavar="ARM",
        help="train and score only these arms (several processes can share one study, each "
        "with its own arms); the report covers every arm with scores",
    )
    return parser


def resolve(args: argparse.Namespace, overrides: list[str]) -> tuple[Study, str]:
    """The study the command line and ``--study`` describe (the command line wins)."""
    file: dict[str, Any] = read_study_file(args.study) if args.study else {}
    known = set(vars(args)) | {"arms", "fit_args", "photos", "mask_split"}
    unknown = sorted(set(file) - known)
    if unknown:
        raise ConfigError(f"--study {args.study}: unknown option(s) {', '.join(unknown)}")

    def pick(name: str) -> Any:
        value = getattr(args, name, None)
        return value if value is not None else file.get(name, DEFAULTS.get(name))

    seeds = int(pick("seeds"))
    if args.arms:
        arms = [arm_from_text(text, seeds) for text in args.arms]
    elif "arms" in file:
        arms = arms_from_mapping(file["arms"], seeds, args.study)
    else:
        raise ConfigError("no arms: give config files or --study with `arms:`")
    missing = [
        n for n in ("base", "images", "out", "images_per_run", "batch_size") if pick(n) is None
    ]
    if missing:
        raise ConfigError(
            f"missing option(s): {', '.join('--' + m.replace('_', '-') for m in missing)}"
        )
    masks, builtin = pick("masks"), pick("builtin_masks")
    if (masks is None) == (builtin is None):
        raise ConfigError("give exactly one of --masks and --builtin-masks")
    out = Path(pick("out")).expanduser()
    study = Study(
        base=Path(pick("base")),
        arms=arms,
        reference=pick("reference") or arms[0].name,
        images_per_run=int(pick("images_per_run")),
        batch_size=int(pick("batch_size")),
        images=Path(pick("images")).expanduser(),
        masks=None if masks is None else Path(masks).expanduser(),
        builtin_masks=builtin,
        size=int(pick("size")),
        per_cell=pick("per_cell"),
        limit=pick("limit"),
        out=out,
        runs=Path(pick("runs") or out / "runs").expanduser(),
        device=pick("device"),
        eval_batch_size=int(pick("eval_batch_size")),
        fit_args=[*file.get("fit_args", []), *overrides],
        photos=file.get("photos"),
        mask_split=file.get("mask_split"),
    )
    study.check()
    return study, str(pick("title"))


def prepare(study: Study) -> None:
    """Make the study's photo folders and mask halves when its file asks for them."""
    from pconv_lightning.masks.split import ensure_split
    from pconv_lightning.study.photos import link_split

    if study.photos:
        p = study.photos
        train, evaluation = link_split(
            Path(p["held_out"]), Path(p["data"]), p["roots"], Path(p["links"]).expanduser()
        )
        print(f"pconv ablate: training photos in {train}, evaluation photos in {evaluation}")
    if study.mask_split:
        m = study.mask_split
        made = ensure_split(
            Path(m["source"]), Path(m["even"]).expanduser(), Path(m["odd"]).expanduser()
        )
        if made:
            print(f"pconv ablate: split the masks of {m['source']} into {m['even']} and {m['odd']}")


def study_pairs(study: Study) -> list:
    """The fixed evaluation pairs (every run is scored on these)."""
    from pconv_lightning.evaluation.pairs import list_images, make_pairs, remeasure
    from pconv_lightning.masks.evaluation import make_evaluation_set
    from pconv_lightning.masks.manifest import read_manifest

    images = list_images(study.images, study.limit)
    if study.builtin_masks is not None:
        folder = study.out / "eval_masks"
        make_evaluation_set(folder, study.builtin_masks, study.size, 0)
    else:
        folder = study.masks
        if not (folder / "manifest.csv").is_file():
            raise MissingInputError(f"--masks {folder} has no manifest.csv (pconv masks index)")
    return make_pairs(
        images, remeasure(read_manifest(folder), study.size), study.per_cell or len(images)
    )


def chosen_arms(study: Study, only: list[str] | None) -> list:
    """The study's arms named by ``--only`` (all of them without it)."""
    if not only:
        return study.arms
    names = [a.name for a in study.arms]
    unknown = [n for n in only if n not in names]
    if unknown:
        raise ConfigError(
            f"--only {' '.join(unknown)}: no such arm (the study's arms: {', '.join(names)})"
        )
    return [a for a in study.arms if a.name in only]


def run(study: Study, title: str, report_only: bool = False, only: list[str] | None = None) -> Path:
    """Train and score every run not yet done (of the arms in ``only``, or all), then write the
    report; returns its path."""
    from pconv_lightning.study.report import write_report
    from pconv_lightning.study.runs import score, score_file, train

    study.out.mkdir(parents=True, exist_ok=True)
    arms = chosen_arms(study, only)
    if not report_only:
        prepare(study)
        pairs = None
        # seed by seed across the arms: a study stopped early has every arm's first seeds
        order = [(a, s) for s in range(max(a.seeds for a in arms)) for a in arms]
        for arm, seed in order:
            if seed >= arm.seeds or score_file(study, arm, seed).is_file():
                continue
            print(f"pconv ablate: arm {arm.name}, seed {seed}: training", flush=True)
            checkpoint = train(study, arm, seed)
            pairs = pairs or study_pairs(study)
            print(f"pconv ablate: arm {arm.name}, seed {seed}: scoring {len(pairs)} pairs")
            written = score(study, arm, seed, checkpoint, pairs)
            print(f"pconv ablate: wrote {written}", flush=True)
    return write_report(study, title)


def main(argv: list[str] | None = None) -> int:
    """Run ``pconv ablate``; arguments after ``--`` are ``pconv fit`` overrides."""
    argv = sys.argv[1:] if argv is None else list(argv)
    split = argv.index("--") if "--" in argv else len(argv)
    args = build_parser().parse_args(argv[:split])
    try:
        study, title = resolve(args, argv[split + 1 :])
        report = run(study, title, args.report_only, args.only)
    except (InputError, ValueError, FileNotFoundError, RuntimeError) as err:
        print(f"pconv ablate: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
