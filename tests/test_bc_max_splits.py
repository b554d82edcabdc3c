"""Specification of BC-MAX's figures per part of the split and per test codebase, and of their report."""

import dataclasses
import json
import os

import pytest

from compiler_opt.rl import evaluate_policy_lib, splits
from compiler_opt.rl.imitation_learning import bc_max_lib, report


@dataclasses.dataclass(frozen=True)
class _Module:
    name: str


def _eval(name, oz, size):
    status = "ok" if oz is not None else "failed"
    return evaluate_policy_lib.ModuleEvaluation(module=name, oz_size=oz, policy_size=size, horizon=3, status=status)


_SPLITS = splits.ModuleSplits(
    train=(_Module("a/x"), _Module("a/y")),
    validation=(_Module("a/z"), _Module("a/v")),
    test_unseen_codebases=(_Module("b/p"), _Module("c/q")),
    test_unseen_files=(_Module("a/w"),),
    languages={"a": "c", "b": "c", "c": "c++"},
)
_EVALUATIONS = {
    e.module: e
    for e in (
        _eval("a/x", 100, 90),
        _eval("a/y", 100, 110),
        _eval("a/z", 200, 200),
        _eval("a/v", None, None),
        _eval("b/p", 50, 40),
        _eval("c/q", 100, 105),
        _eval("a/w", 300, 270),
    )
}
# (best size, -Oz size) from collection; a/w's collection failed.
_ORACLE = {"a/x": (80, 100), "a/y": (100, 100), "a/z": (190, 200), "b/p": (45, 50), "c/q": (95, 100)}


def test_each_part_has_its_ratio_and_oracle_over_stock_oz_and_its_smaller_larger_counts():
    parts, _ = bc_max_lib.figures(_SPLITS, _EVALUATIONS, _ORACLE)
    train = parts[splits.TRAIN]
    assert (train.ratio, train.oracle_ratio, train.smaller, train.larger) == (1.0, 0.9, 1, 1)
    validation = parts[splits.VALIDATION]
    assert (validation.modules, validation.evaluated, validation.ratio, validation.oracle_ratio) == (2, 1, 1.0, 0.95)
    unseen = parts[splits.TEST_UNSEEN_CODEBASES]
    assert unseen.ratio == pytest.approx(145 / 150) and unseen.oracle_ratio == pytest.approx(140 / 150)
    # A module whose collection failed counts at its -Oz size in the oracle.
    files = parts[splits.TEST_UNSEEN_FILES]
    assert (files.ratio, files.oracle_ratio) == (0.9, 1.0)


def test_every_test_codebase_has_its_own_figures():
    _, by_codebase = bc_max_lib.figures(_SPLITS, _EVALUATIONS, _ORACLE)
    rows = {(c.codebase, c.part, c.language): (c.figures.ratio, c.figures.oracle_ratio) for c in by_codebase}
    assert rows == {
        ("b", splits.TEST_UNSEEN_CODEBASES, "c"): (0.8, 0.9),
        ("c", splits.TEST_UNSEEN_CODEBASES, "c++"): (1.05, 0.95),
        ("a", splits.TEST_UNSEEN_FILES, "c"): (0.9, 1.0),
    }


def test_without_train_evaluation_the_train_oracle_comes_from_collection():
    evaluations = {k: v for k, v in _EVALUATIONS.items() if not k.startswith("a/x") and not k.startswith("a/y")}
    parts, _ = bc_max_lib.figures(_SPLITS, evaluations, _ORACLE)
    assert (parts[splits.TRAIN].ratio, parts[splits.TRAIN].oracle_ratio) == (None, 0.9)


def _result(iteration, validation_ratio, test_ratio):
    parts, by_codebase = bc_max_lib.figures(_SPLITS, _EVALUATIONS, _ORACLE)
    parts[splits.VALIDATION] = dataclasses.replace(parts[splits.VALIDATION], ratio=validation_ratio)
    parts[splits.TEST_UNSEEN_CODEBASES] = dataclasses.replace(parts[splits.TEST_UNSEEN_CODEBASES], ratio=test_ratio)
    return bc_max_lib.IterationResult(
        iteration=iteration,
        policy=f"saved:/r/iteration_{iteration}/model/saved_policy",
        baselines=("heuristic",),
        parts=parts,
        test_codebases=by_codebase,
        wins={"heuristic": 2},
        seconds=1.0,
    )


def test_the_best_iteration_is_chosen_on_validation_never_on_test():
    results = [_result(1, 0.99, 0.90), _result(2, 0.98, 1.10), _result(3, 0.985, 0.80)]
    assert bc_max_lib.best_iteration(results).iteration == 2


# matplotlib 3.x's font-pattern parser calls pyparsing names that pyparsing 3.2 deprecates, once, on import.
@pytest.mark.filterwarnings("ignore:.*deprecated - use:DeprecationWarning")
def test_report_and_results_json_show_all_four_parts_and_the_test_codebases(tmp_path):
    results = [_result(1, 0.99, 0.97), _result(2, 0.98, 0.96)]
    report.write(str(tmp_path), results, _SPLITS)
    with open(tmp_path / "results.json") as f:
        saved = json.load(f)
    assert [bc_max_lib.IterationResult.from_dict(r) for r in saved["iterations"]] == results
    assert saved["best_iteration"] == 2
    assert {p: v["modules"] for p, v in saved["splits"].items()} == {
        splits.TRAIN: 2,
        splits.VALIDATION: 2,
        splits.TEST_UNSEEN_CODEBASES: 2,
        splits.TEST_UNSEEN_FILES: 1,
    }
    text = (tmp_path / "report.md").read_text()
    for title in report.PART_TITLES.values():
        assert title in text, title
    table = report.codebase_table(results[1])
    assert [line.split()[:2] for line in table.splitlines()[2:]] == [["b", "unseen"], ["c", "unseen"], ["a", "unseen"]]
    assert "1.0500" in table and "0.8000" in table
    assert os.path.getsize(tmp_path / "size_ratio.png") > 0


def _finished_run(root, baselines):
    """A run directory whose iteration 1 finished with `baselines`; returns its iteration file."""
    path = os.path.join(bc_max_lib.iteration_dir(str(root), 1), bc_max_lib.ITERATION_FILE)
    os.makedirs(os.path.dirname(path))
    part = bc_max_lib.PartFigures(
        modules=1, evaluated=1, ratio=0.99, oracle_ratio=0.98, geomean=0.99, smaller=1, larger=0
    )
    result = bc_max_lib.IterationResult(
        iteration=1,
        policy="saved:p",
        baselines=baselines,
        parts={p: part for p in splits.PARTS},
        test_codebases=(),
        wins={},
        seconds=1.0,
    )
    with open(path, "w") as f:
        f.write(result.to_json())
    return path


def test_resuming_with_other_baselines_keeps_the_finished_iteration_and_says_so(tmp_path, caplog):
    """A finished iteration is never redone or lost; when the config's baselines differ from those it ran with (e.g.
    `make demo` after its config gained a baseline), the user is told which directory to change."""
    path = _finished_run(tmp_path, ("heuristic",))
    with open(path) as f:
        before = f.read()

    results = bc_max_lib.run(
        _SPLITS, str(tmp_path), None, baselines=("heuristic", "heuristic:threshold=25"), iterations=1, patience=1
    )

    assert [r.baselines for r in results] == [("heuristic",)]
    with open(path) as f:
        assert f.read() == before
    assert "was run with the baselines heuristic, not those of this config" in caplog.text
    assert "pass another --root_dir" in caplog.text


def test_resuming_on_another_validation_part_keeps_the_finished_iteration_and_says_so(tmp_path, caplog):
    path = _finished_run(tmp_path, ("heuristic",))  # evaluated on 1 validation module; _SPLITS has 2
    with open(path) as f:
        before = f.read()

    bc_max_lib.run(_SPLITS, str(tmp_path), None, baselines=("heuristic",), iterations=1, patience=1)

    with open(path) as f:
        assert f.read() == before
    assert "evaluated on 1 validation modules, not the 2" in caplog.text and path in caplog.text


def test_resuming_with_the_same_baselines_does_not_warn(tmp_path, caplog):
    _finished_run(tmp_path, ("heuristic", "heuristic:threshold=25"))

    bc_max_lib.run(
        _SPLITS, str(tmp_path), None, baselines=("heuristic", "heuristic:threshold=25"), iterations=1, patience=1
    )

    assert "not those of this config" not in caplog.text


# Validation holds a whole codebase `d` (no train module) and files of the training codebase `a`.
_SPLITS_WITH_WHOLE_VALIDATION_CODEBASE = dataclasses.replace(
    _SPLITS, validation=(_Module("a/z"), _Module("d/r"), _Module("d/s"))
)


def _write_validation_files(it_dir):
    """What an iteration leaves: its policy's validation CSV and the held-out baselines' profiles."""
    from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
    from compiler_opt.rl.imitation_learning import profiles

    evaluations = [_eval("a/z", 200, 180), _eval("d/r", 100, 104), _eval("d/s", 300, 300)]
    evaluate_policy_lib.write(
        os.path.join(it_dir, f"eval_{splits.VALIDATION}"),
        evaluations,
        evaluate_policy_lib.summarize("saved:p", evaluations),
    )
    outcome = profiles.PolicyOutcome(size=1, text_section_size=1, horizon=1, seconds=0.1, status="ok")
    rows = [
        profiles.ModuleProfile(
            module=m, results={"heuristic": outcome}, best="heuristic", best_size=b, oz_size=oz, label=0
        )
        for m, b, oz in (("a/z", 170, 200), ("d/r", 98, 100), ("d/s", 300, 300))
    ]
    baselines_dir = os.path.join(it_dir, bc_max_lib.EVAL_BASELINES_DIR)
    os.makedirs(baselines_dir, exist_ok=True)
    profiles.write_jsonl(os.path.join(baselines_dir, collection.PROFILES_FILE), rows)


def test_validation_is_also_reported_for_its_unseen_codebases_and_its_unseen_files_apart(tmp_path):
    _write_validation_files(str(tmp_path))
    kinds = bc_max_lib.validation_kinds(_SPLITS_WITH_WHOLE_VALIDATION_CODEBASE, str(tmp_path))
    unseen = kinds[bc_max_lib.VALIDATION_UNSEEN_CODEBASES]
    files = kinds[bc_max_lib.VALIDATION_UNSEEN_FILES]
    assert (unseen.modules, unseen.larger, unseen.smaller) == (2, 1, 0)
    assert unseen.ratio == pytest.approx(404 / 400) and unseen.oracle_ratio == pytest.approx(398 / 400)
    assert (files.modules, files.ratio, files.oracle_ratio) == (1, 0.9, 0.85)
    assert bc_max_lib.validation_kinds(_SPLITS_WITH_WHOLE_VALIDATION_CODEBASE, str(tmp_path / "none")) == {}


def test_large_modules_added_to_validation_are_its_third_kind_and_the_report_shows_them(tmp_path):
    _write_validation_files(str(tmp_path))
    # d/s is a large module from another corpus: it leaves the unseen-codebase kind for its own.
    with_large = dataclasses.replace(_SPLITS_WITH_WHOLE_VALIDATION_CODEBASE, large=frozenset({"d/s"}))
    kinds = bc_max_lib.validation_kinds(with_large, str(tmp_path))
    unseen, large = kinds[bc_max_lib.VALIDATION_UNSEEN_CODEBASES], kinds[bc_max_lib.VALIDATION_LARGE_MODULES]
    assert (unseen.modules, unseen.ratio, unseen.oracle_ratio) == (1, 1.04, 0.98)
    assert (large.modules, large.ratio, large.oracle_ratio) == (1, 1.0, 1.0)
    assert kinds[bc_max_lib.VALIDATION_UNSEEN_FILES].ratio == 0.9
    result = dataclasses.replace(_result(1, 0.99, 0.99), validation_kinds=kinds)
    assert "large modules" in report.validation_table([result])
    plain = bc_max_lib.validation_kinds(_SPLITS_WITH_WHOLE_VALIDATION_CODEBASE, str(tmp_path))
    assert "large modules" not in report.validation_table([dataclasses.replace(result, validation_kinds=plain)])
    assert "the large modules the corpus leaves out" in report.validation_caption([result])
    without = dataclasses.replace(result, validation_kinds=plain)
    assert "large modules" not in report.validation_caption([without])


def test_a_damaged_validation_csv_costs_only_the_kinds_figures(tmp_path, caplog):
    _write_validation_files(str(tmp_path))
    path = tmp_path / f"eval_{splits.VALIDATION}.csv"
    path.write_text(path.read_text().replace("180", "18O"))
    assert bc_max_lib.validation_kinds(_SPLITS_WITH_WHOLE_VALIDATION_CODEBASE, str(tmp_path)) == {}
    assert "validation by kind is left out" in caplog.text and str(path) in caplog.text


def test_a_finished_iteration_without_validation_kinds_gets_them_from_its_files_on_resume(tmp_path):
    path = _finished_run(tmp_path, ("heuristic",))
    _write_validation_files(os.path.dirname(path))
    (result,) = bc_max_lib.run(
        _SPLITS_WITH_WHOLE_VALIDATION_CODEBASE, str(tmp_path), None, baselines=("heuristic",), iterations=1
    )
    assert result.validation_kinds[bc_max_lib.VALIDATION_UNSEEN_CODEBASES].ratio == pytest.approx(1.01)
    text = report.summary_text([result], _SPLITS_WITH_WHOLE_VALIDATION_CODEBASE)
    assert "Validation by kind of module" in text and "unseen codebases" in text
    assert "1.0100" in text and "0.9950" in text
