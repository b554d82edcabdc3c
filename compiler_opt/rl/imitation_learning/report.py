"""The BC-MAX report: root_dir/report.md with three PNG plots, root_dir/results.json, and a console table.

results.json: {"iterations": [IterationResult as a dict, ...], "best_iteration": t (lowest validation ratio),
"best_policy": spec, "chosen_on": "validation" ("last" when no iteration has a validation ratio),
"splits": {part: {"modules": n, "codebases": {name: n}}} or null}.

Plots (matplotlib, Agg backend):
  size_ratio.png    total text size / stock -Oz per iteration: every part of the split, with its oracle (per-module
                    best of the baselines and, on train, explorations)
  size_change.png   distribution of per-module size change (%) vs -Oz of the best iteration's policy, per part
  wins.png          which baseline (or exploration) produced each module's best trajectory, per iteration
"""

from __future__ import annotations

import collections
import csv
import dataclasses
import json
import os
from collections.abc import Mapping, Sequence

from compiler_opt.rl import atomic_file, splits
from compiler_opt.rl.imitation_learning import bc_max_lib

# The run's figures and the iteration chosen on validation (module docstring).
RESULTS_FILE = "results.json"

# Column titles of the parts, in splits.PARTS order.
PART_TITLES = {
    splits.TRAIN: "train",
    splits.VALIDATION: "validation",
    splits.TEST_UNSEEN_CODEBASES: "test: unseen codebases",
    splits.TEST_UNSEEN_FILES: "test: unseen files",
}
# Column titles of validation_table (shown under a heading that says they are validation's).
VALIDATION_KIND_TITLES = {
    bc_max_lib.VALIDATION_UNSEEN_CODEBASES: "unseen codebases",
    bc_max_lib.VALIDATION_UNSEEN_FILES: "unseen files",
    bc_max_lib.VALIDATION_LARGE_MODULES: "large modules",
}


def chosen_policy(root_dir: str) -> str | None:
    """The saved_policy directory of the iteration that `root_dir/results.json` records as chosen
    (`best_iteration`), whether or not it still exists; None when there is no results.json yet (a run that has not
    finished an iteration) or it chose nothing. Raises ValueError naming the file when it is not valid JSON."""
    path = os.path.join(root_dir, RESULTS_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path) as f:
            best = json.load(f).get("best_iteration")
    except (ValueError, AttributeError) as e:
        raise ValueError(f"{path} is not a bc_max results file ({e}): rerun bc_max on {root_dir} to rewrite it") from e
    if best is None:
        return None
    return os.path.join(bc_max_lib.iteration_dir(root_dir, int(best)), "model", "saved_policy")


def _fmt(x: float | None) -> str:
    return "—" if x is None else f"{x:.4f}"


def _counts(f: bc_max_lib.PartFigures) -> str:
    return f"{f.smaller}/{f.larger}" if f.evaluated else "—"


def _figures_table(results, titles: Mapping[str, str], figures_of) -> str:
    """One row per iteration; per column key its ratio, oracle and smaller/larger modules (`figures_of(result, key)`:
    PartFigures or None, shown as a dash)."""
    width = 24
    top = f"{'':>4}" + "".join(f"  {title:^{width}}" for title in titles.values())
    header = f"{'iter':>4}" + f"  {'ratio':>7} {'oracle':>7} {'+/-':>8}" * len(titles)
    lines = [top.rstrip(), header, "-" * len(header)]
    for r in results:
        row = f"{r.iteration:>4}"
        for key in titles:
            f = figures_of(r, key)
            row += "  " + (f"{_fmt(f.ratio):>7} {_fmt(f.oracle_ratio):>7} {_counts(f):>8}" if f else f"{'—':>24}")
        lines.append(row)
    return "\n".join(lines)


def table(results: Sequence[bc_max_lib.IterationResult]) -> str:
    """A fixed-width table: one row per iteration; per part its ratio, its oracle and the modules that got
    smaller/larger than -Oz (all ratios are total size / stock -Oz)."""
    return _figures_table(results, PART_TITLES, lambda r, part: r.parts[part])


def validation_table(results: Sequence[bc_max_lib.IterationResult]) -> str:
    """Validation by kind per iteration: its whole codebases (never trained on), its files of the training
    codebases, and the large modules the corpus leaves out when the run added them; empty when no iteration has
    them."""
    titles = {k: t for k, t in VALIDATION_KIND_TITLES.items() if any(k in r.validation_kinds for r in results)}
    if not titles:
        return ""
    return _figures_table(results, titles, lambda r, kind: r.validation_kinds.get(kind))


def validation_caption(results: Sequence[bc_max_lib.IterationResult]) -> str:
    """The sentence report.md puts above validation_table: which kinds of validation modules it shows."""
    large = any(bc_max_lib.VALIDATION_LARGE_MODULES in r.validation_kinds for r in results)
    return (
        "Validation by kind of module: its whole codebases, which train never saw (the question your own code\n"
        "asks), and its sample of files from the training codebases"
        + (",\nand the large modules the corpus leaves out (added with --large_data_path)" if large else "")
        + " (the choice uses all of validation):"
    )


def codebase_table(result: bc_max_lib.IterationResult) -> str:
    """The test figures of one iteration by codebase (ratio and oracle over stock -Oz, smaller/larger modules)."""
    header = f"{'codebase':<24} {'test part':<15} {'lang':<4} {'modules':>7} {'ratio':>7} {'oracle':>7} {'+/-':>8}"
    lines = [header, "-" * len(header)]
    for c in result.test_codebases:
        f = c.figures
        part = "unseen codebase" if c.part == splits.TEST_UNSEEN_CODEBASES else "unseen files"
        lines.append(
            f"{c.codebase or '(top level)':<24} {part:<15} {c.language or '?':<4} {f.modules:>7} "
            f"{_fmt(f.ratio):>7} {_fmt(f.oracle_ratio):>7} {_counts(f):>8}"
        )
    return "\n".join(lines)


def summary_text(results: Sequence[bc_max_lib.IterationResult], module_splits: splits.ModuleSplits | None) -> str:
    """What bc_max prints at the end: the split, the table, and the chosen iteration's test by codebase."""
    lines = []
    if module_splits is not None:
        unseen = ", ".join(module_splits.codebases(splits.TEST_UNSEEN_CODEBASES)) or "none"
        total = sum(len(m) for _, m in module_splits.items())
        lines.append(f"BC-MAX, total text size / stock -Oz, on {total} modules split by codebase:")
        lines.append(
            f"{len(module_splits.train)} train, {len(module_splits.validation)} validation, "
            f"{len(module_splits.test_unseen_codebases)} test on unseen codebases ({unseen}), "
            f"{len(module_splits.test_unseen_files)} test on unseen files"
        )
    lines.append(table(results))
    if kinds := validation_table(results):
        lines += ["", "Validation by kind of module (the choice uses all of validation):", kinds]
    best = bc_max_lib.best_iteration(results)
    if best is not None and best.test_codebases:
        lines += ["", f"Test by codebase, iteration {best.iteration} (chosen on validation):", codebase_table(best)]
    return "\n".join(lines)


def _deltas(csv_path: str) -> list[float]:
    if not os.path.exists(csv_path):
        return []
    with open(csv_path) as f:
        return [100.0 * (float(row["ratio"]) - 1.0) for row in csv.DictReader(f) if row["ratio"]]


def write(
    root_dir: str,
    results: Sequence[bc_max_lib.IterationResult],
    module_splits: splits.ModuleSplits | None = None,
) -> str:
    """Writes the report files; returns the path of report.md. `module_splits` adds the split to both."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    iterations = [r.iteration for r in results]
    fig, ax = plt.subplots(figsize=(8, 4))
    for k, (part, marker) in enumerate(zip(splits.PARTS, "osD^", strict=True)):
        for attr, label, line in (("ratio", PART_TITLES[part], "-"), ("oracle_ratio", "oracle", "--")):
            points = [(r.iteration, getattr(r.parts[part], attr)) for r in results]
            points = [(i, v) for i, v in points if v is not None]
            if points:
                label = label if attr == "ratio" else f"{label} ({PART_TITLES[part]})"
                ax.plot(*zip(*points, strict=True), marker + line, color=f"C{k}", label=label)
    ax.axhline(1.0, color="gray", lw=1, label="-Oz")
    ax.set_xlabel("BC-MAX iteration")
    ax.set_ylabel("total text size / -Oz")
    ax.set_xticks(iterations)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(os.path.join(root_dir, "size_ratio.png"), dpi=110)
    plt.close(fig)

    best = bc_max_lib.best_iteration(results)
    chosen = bc_max_lib.iteration_dir(root_dir, best.iteration) if best else root_dir
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.axvline(0.0, color="gray", lw=1, label="-Oz")
    for part in splits.PARTS:
        deltas = _deltas(os.path.join(chosen, f"eval_{part}.csv"))
        if deltas:
            ax.hist(deltas, bins=30, alpha=0.6, label=f"{PART_TITLES[part]} ({len(deltas)} modules)")
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

    lines = [
        "# BC-MAX report",
        "",
        "Ratios are total `llvm-size` text size over stock clang-22 -Oz on the same modules (below 1 is smaller).",
        "The oracle is the per-module best of the iteration's baselines and, on train, of the explorations around",
        "them, over the same stock -Oz total.",
        "`+/-`: modules whose object got smaller / larger than -Oz's.",
        "",
    ]
    if module_splits is not None:
        lines += ["## Split (by codebase, compiler_opt/rl/splits.py)", ""]
        for p in splits.PARTS:
            codebases = ", ".join(f"{c or '(top level)'}" for c in module_splits.codebases(p))
            lines.append(f"- {PART_TITLES[p]}: {len(module_splits.part(p))} modules ({codebases})")
        lines += [
            "",
            "Validation chooses the best iteration and stops the loop; the test parts are reported only.",
            "",
        ]
    lines += ["```", table(results), "```", ""]
    if kinds := validation_table(results):
        lines += [
            validation_caption(results),
            "",
            "```",
            kinds,
            "```",
            "",
        ]
    if best is not None:
        lines += [
            f"Best iteration on validation: {best.iteration}, `{_short(best.policy, root_dir)}`.",
            "",
        ]
        if best.test_codebases:
            lines += ["Its test figures by codebase:", "", "```", codebase_table(best), "```", ""]
    lines += [
        "![total size per iteration](size_ratio.png)",
        "",
        "![per-module size change, best iteration](size_change.png)",
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
    validated = any(r.ratio(splits.VALIDATION) is not None for r in results)
    atomic_file.write_text(
        os.path.join(root_dir, RESULTS_FILE),
        json.dumps(
            {
                "iterations": [dataclasses.asdict(r) for r in results],
                "best_iteration": best.iteration if best else None,
                "best_policy": best.policy if best else None,
                "chosen_on": splits.VALIDATION if validated else "last",
                "splits": _split_json(module_splits),
            },
            indent=2,
        ),
    )
    return path


def _split_json(module_splits: splits.ModuleSplits | None) -> dict | None:
    if module_splits is None:
        return None
    return {
        p: {
            "modules": len(module_splits.part(p)),
            "codebases": dict(collections.Counter(splits.codebase_of(m.name) for m in module_splits.part(p))),
        }
        for p in splits.PARTS
    }


def _short(name: str, root_dir: str) -> str:
    return name.replace(os.path.abspath(root_dir) + os.sep, "").replace("/model/saved_policy", "")
