"""The BC-MAX report: root_dir/report.md with three PNG plots, root_dir/results.json, and a console table.

Plots (matplotlib, Agg backend):
  size_ratio.png    total text size / stock -Oz per iteration: train and held-out, with the oracle (per-module
                    best of the baselines and explorations)
  size_change.png   distribution of per-module size change (%) of the last iteration's policy vs -Oz
  wins.png          which baseline (or exploration) produced each module's best trajectory, per iteration
"""

from __future__ import annotations

import csv
import dataclasses
import json
import os
from collections.abc import Sequence

from compiler_opt.rl import atomic_file
from compiler_opt.rl.imitation_learning import bc_max_lib


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def table(results: Sequence[bc_max_lib.IterationResult]) -> str:
    """A fixed-width table: one row per iteration (ratios are total size / stock -Oz)."""
    header = f"{'iter':>4}  {'train':>7}  {'held-out':>8}  {'oracle(tr)':>10}  {'oracle(ho)':>10}  {'ho +/-':>9}"
    lines = [header, "-" * len(header)]
    for r in results:
        counts = f"{r.held_out_smaller}/{r.held_out_larger}"
        lines.append(
            f"{r.iteration:>4}  {_fmt(r.train_ratio):>7}  {_fmt(r.held_out_ratio):>8}  "
            f"{_fmt(r.train_oracle_ratio):>10}  {_fmt(r.held_out_oracle_ratio):>10}  {counts:>9}"
        )
    return "\n".join(lines)


def _deltas(csv_path: str) -> list[float]:
    if not os.path.exists(csv_path):
        return []
    with open(csv_path) as f:
        return [100.0 * (float(row["ratio"]) - 1.0) for row in csv.DictReader(f) if row["ratio"]]


def write(root_dir: str, results: Sequence[bc_max_lib.IterationResult]) -> str:
    """Writes the report files; returns the path of report.md."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    iterations = [r.iteration for r in results]
    fig, ax = plt.subplots(figsize=(6, 4))
    for attr, label, style in (
        ("train_ratio", "train", "o-"),
        ("held_out_ratio", "held-out", "s-"),
        ("train_oracle_ratio", "oracle (train)", "o--"),
        ("held_out_oracle_ratio", "oracle (held-out)", "s--"),
    ):
        points = [(r.iteration, getattr(r, attr)) for r in results if getattr(r, attr) is not None]
        if points:
            ax.plot(*zip(*points, strict=True), style, label=label)
    ax.axhline(1.0, color="gray", lw=1, label="-Oz")
    ax.set_xlabel("BC-MAX iteration")
    ax.set_ylabel("total text size / -Oz")
    ax.set_xticks(iterations)
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(root_dir, "size_ratio.png"), dpi=110)
    plt.close(fig)

    last = bc_max_lib.iteration_dir(root_dir, results[-1].iteration) if results else root_dir
    fig, ax = plt.subplots(figsize=(6, 4))
    for name, label in (("eval_held_out.csv", "held-out"), ("eval_train.csv", "train")):
        deltas = _deltas(os.path.join(last, name))
        if deltas:
            ax.hist(deltas, bins=30, alpha=0.6, label=f"{label} ({len(deltas)} modules)")
    ax.axvline(0.0, color="gray", lw=1)
    ax.set_xlabel("per-module text size change vs -Oz (%)")
    ax.set_ylabel("modules")
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(root_dir, "size_change.png"), dpi=110)
    plt.close(fig)

    names = sorted({n for r in results for n in r.wins}, key=lambda n: (n.startswith("saved:"), "+" in n, n))
    fig, ax = plt.subplots(figsize=(7, 4))
    bottom = [0] * len(results)
    for name in names:
        counts = [r.wins.get(name, 0) for r in results]
        ax.bar(iterations, counts, bottom=bottom, label=_short(name, root_dir))
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.set_xlabel("BC-MAX iteration")
    ax.set_ylabel("modules won (train)")
    ax.set_xticks(iterations)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(os.path.join(root_dir, "wins.png"), dpi=110)
    plt.close(fig)

    best = min((r for r in results if r.held_out_ratio is not None), key=lambda r: r.held_out_ratio, default=None)
    lines = [
        "# BC-MAX report",
        "",
        "Ratios are total `llvm-size` text size over stock clang-22 -Oz on the same modules (below 1 is smaller).",
        "The oracle is the per-module best of the iteration's baselines and, on train, of the explorations around",
        "them, over the same stock -Oz total.",
        "",
        "```",
        table(results),
        "```",
        "",
    ]
    if best is not None:
        lines += [f"Best held-out policy: iteration {best.iteration}, `{_short(best.policy, root_dir)}`.", ""]
    lines += [
        "![total size per iteration](size_ratio.png)",
        "",
        "![per-module size change](size_change.png)",
        "",
        "![which baseline won](wins.png)",
        "",
        "## Wins per iteration (train modules)",
        "",
    ]
    for r in results:
        wins = ", ".join(f"`{_short(k, root_dir)}`: {v}" for k, v in sorted(r.wins.items(), key=lambda kv: -kv[1]))
        lines.append(f"- iteration {r.iteration} ({r.seconds:.0f} s): {wins}")
    path = os.path.join(root_dir, "report.md")
    atomic_file.write_text(path, "\n".join(lines) + "\n")
    atomic_file.write_text(
        os.path.join(root_dir, "results.json"),
        json.dumps(
            {
                "iterations": [dataclasses.asdict(r) for r in results],
                "best_iteration": best.iteration if best else None,
                "best_policy": best.policy if best else None,
            },
            indent=2,
        ),
    )
    return path


def _short(name: str, root_dir: str) -> str:
    return name.replace(os.path.abspath(root_dir) + os.sep, "").replace("/model/saved_policy", "")
