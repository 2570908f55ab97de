"""The summary of a sweep folder: a table of every point (parameters, final and best metric,
stopped early or not, and other columns of the same validation rows such as ``val/psnr``), the
best point, and one plot of the best metric against each parameter.

Written to ``DIR/summary.md``, ``DIR/summary.csv`` and ``DIR/summary.png`` after every point,
and ``DIR/best.yaml``: the best finished point's parameters as a config file to pass after the
sweep's own configs (``pconv fit --config ... --config DIR/best.yaml``).
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

from pconv_lightning.sweeps.records import Point, SweepDir
from pconv_lightning.sweeps.wandb_runs import finite

EXTRA_COLUMNS = ("val/psnr",)


def short_names(names: list[str]) -> dict[str, str]:
    """Parameter names without their common dotted prefix (``model.loss_weights.hole`` ->
    ``hole`` when every parameter is a loss weight)."""
    if len(names) < 2:
        return {n: n for n in names}
    split = [n.split(".") for n in names]
    common = 0
    while all(len(s) > common + 1 and s[common] == split[0][common] for s in split):
        common += 1
    return {n: ".".join(s[common:]) for n, s in zip(names, split, strict=True)}


def best_index(values: list[Any], goal: str) -> int | None:
    scored = [(v, i) for i, v in enumerate(values) if finite(v)]
    if not scored:
        return None
    return (min(scored) if goal == "minimize" else max(scored))[1]


def rows(config: dict[str, Any], points: list[Point], extra=EXTRA_COLUMNS) -> list[dict[str, Any]]:
    """One dict per point, in order: the table's columns."""
    metric = config.get("metric", {}).get("name")
    goal = config.get("metric", {}).get("goal", "minimize")
    names = list(config["parameters"])
    short = short_names(names)
    table = []
    for point in points:
        row: dict[str, Any] = {"point": point.number, "run": point.run_id, "state": point.state}
        row["stopped early"] = "yes" if point.stopped else "no"
        row.update({short[n]: point.params.get(n) for n in names})
        values = point.values(metric) if metric else []
        at = best_index(values, goal)
        row[f"{metric} final"] = values[-1] if values else None
        row[f"{metric} best"] = values[at] if at is not None else None
        row["validations"] = len(values)
        for column in extra:
            logged = [r.get(column) for r in point.history]
            if any(v is not None for v in logged):
                row[f"{column} final"] = logged[-1]
                row[f"{column} at best"] = logged[at] if at is not None else None
        table.append(row)
    return table


def plotted(config: dict[str, Any], points: list[Point], table: list[dict[str, Any]]) -> list:
    """The (point, row) pairs the plot shows: finished points with a value of the metric (a
    point cut short and run again is left out: its value is from part of the budget)."""
    metric = config.get("metric", {}).get("name")
    return [
        (p, r)
        for p, r in zip(points, table, strict=True)
        if p.state == "finished" and finite(r.get(f"{metric} best"))
    ]


def best_point(config: dict[str, Any], points: list[Point], table: list[dict[str, Any]]):
    """The finished point with the best metric (stopped points included), or None."""
    metric = config.get("metric", {}).get("name")
    goal = config.get("metric", {}).get("goal", "minimize")
    candidates = plotted(config, points, table)
    if not candidates:
        return None
    pick = min if goal == "minimize" else max
    return pick(candidates, key=lambda c: c[1][f"{metric} best"])


def fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def markdown(config: dict[str, Any], points: list[Point], table: list[dict[str, Any]]) -> str:
    metric = config.get("metric", {}).get("name")
    goal = config.get("metric", {}).get("goal")
    columns = list(dict.fromkeys(k for row in table for k in row))
    lines = [
        f"# Sweep {config.get('name', '')}".rstrip(),
        "",
        f"Method {config['method']}"
        + (f", metric `{metric}` ({goal})" if metric else "")
        + (
            f", early_terminate {config['early_terminate']['type']}"
            if "early_terminate" in config
            else ""
        )
        + f"; {len(points)} point(s). Best = the best value of the metric over a point's "
        "validations; other columns are taken at that validation and at the last.",
        "",
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(fmt(row.get(c)) for c in columns) + " |" for row in table),
        "",
    ]
    best = best_point(config, points, table)
    if best is not None:
        point, row = best
        params = ", ".join(f"{k}={fmt(v)}" for k, v in point.params.items())
        lines += [
            f"Best point: {point.number} [{point.run_id}], {metric} {fmt(row[f'{metric} best'])}"
            + (" (stopped early)" if point.stopped else "")
            + f": {params}",
            "",
        ]
    lines += ["![metric against each parameter](summary.png)", ""]
    return "\n".join(lines)


def plot(config: dict[str, Any], points: list[Point], table: list[dict[str, Any]], path: Path):
    """The best metric of every point against each parameter that varies."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = config.get("metric", {}).get("name")
    names = [n for n in config["parameters"] if "value" not in config["parameters"][n]]
    short = short_names(list(config["parameters"]))
    shown = plotted(config, points, table)
    best = best_point(config, points, table)
    fig, axes = plt.subplots(1, max(len(names), 1), figsize=(3.2 * max(len(names), 1), 3.0))
    axes = list(axes) if hasattr(axes, "__len__") else [axes]
    for ax, name in zip(axes, names, strict=False):
        spec = config["parameters"][name]
        values = [p.params.get(name) for p, _ in shown]
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        if numeric:
            xs = values
        else:
            labels = list(dict.fromkeys(map(str, values)))
            xs = [labels.index(str(v)) for v in values]
            ax.set_xticks(range(len(labels)), [Path(s).stem for s in labels], rotation=45)
        ys = [r[f"{metric} best"] for _, r in shown]
        full = [i for i, (p, _) in enumerate(shown) if not p.stopped]
        early = [i for i, (p, _) in enumerate(shown) if p.stopped]
        if full:
            ax.scatter(
                [xs[i] for i in full], [ys[i] for i in full], color="C0", label="full budget"
            )
        if early:
            ax.scatter(
                [xs[i] for i in early],
                [ys[i] for i in early],
                facecolors="none",
                edgecolors="C0",
                label="stopped early",
            )
        if best is not None and best[0] in [p for p, _ in shown]:
            i = [p for p, _ in shown].index(best[0])
            ax.scatter([xs[i]], [ys[i]], marker="*", s=160, color="C3", label="best", zorder=3)
        if numeric and "log" in str(spec.get("distribution", "")):
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel(short[name])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"{metric} (best per point)")
    if shown:
        axes[0].legend(fontsize="small")
    fig.suptitle(f"{config.get('name', 'sweep')}: {metric} ({config['metric']['goal']})")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def best_config(config: dict[str, Any], point: Point, value: Any) -> str:
    """``best.yaml``: the point's dotted parameters (``model.loss_weights.hole``) as nested
    config keys; parameters that are not config keys (``config``) are named in its header."""
    import yaml

    nested: dict[str, Any] = {}
    other = []
    for name, param in point.params.items():
        if "." not in name:
            other.append(f"--{name}={param}")
            continue
        *parents, leaf = name.split(".")
        node = nested
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = param
    metric = config.get("metric", {}).get("name")
    header = [
        f"# The best point of sweep {config.get('name', '')}: point {point.number} "
        f"[{point.run_id}], {metric} {fmt(value)}.",
        "# Pass it after the sweep's configs: pconv fit --config ... --config best.yaml",
    ]
    if other:
        header.append(f"# with the arguments {' '.join(other)}")
    body = yaml.safe_dump(nested, sort_keys=True) if nested else ""
    return "\n".join(header) + "\n" + body


def write_summary(sweep: SweepDir, config: dict[str, Any], points: list[Point]) -> None:
    metric = config.get("metric", {}).get("name")
    table = rows(config, points)
    columns = list(dict.fromkeys(k for row in table for k in row))
    with open(sweep.root / "summary.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(table)
    (sweep.root / "summary.md").write_text(markdown(config, points, table))
    best = best_point(config, points, table)
    if best is not None:
        point, row = best
        (sweep.root / "best.yaml").write_text(best_config(config, point, row[f"{metric} best"]))
    scored = any(finite(row.get(f"{metric} best")) for row in table)
    if scored and any("value" not in spec for spec in config["parameters"].values()):
        plot(config, points, table, sweep.root / "summary.png")
