"""Specification of policy evaluation against stock -Oz on real modules."""

import csv
import json
import subprocess
import sys

import pytest

from compiler_opt.distributed import local
from compiler_opt.rl import corpus, evaluate_policy_lib, policies

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def modules(default_corpus):
    """A fixed sample of real modules, C and C++."""
    return list(corpus.Corpus.load(default_corpus).sample(12, seed=1))


def test_the_heuristic_reproduces_stock_oz_on_every_module_of_the_default_corpus(default_corpus):
    modules = list(corpus.Corpus.load(default_corpus))
    with local.LocalExecutor(2) as executor:
        evaluations, summary = evaluate_policy_lib.evaluate(
            modules, policies.parse("heuristic"), executor, progress=False
        )
    assert summary.failures == 0 and summary.evaluated == len(modules)
    assert summary.total_ratio == 1.0 and summary.geomean_ratio == 1.0
    assert summary.equal == len(modules) and summary.smaller == summary.larger == 0
    assert all(e.policy_size == e.oz_size for e in evaluations)


def test_never_inlining_is_larger_than_oz_in_total(modules):
    with local.LocalExecutor(2) as executor:
        _, summary = evaluate_policy_lib.evaluate(modules, policies.parse("never"), executor, progress=False)
    assert summary.total_ratio > 1.0


def test_cli_writes_the_csv_and_summaries_of_a_split_part(default_corpus, tmp_path):
    prefix = str(tmp_path / "eval")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.tools.evaluate_policy",
            f"--data_path={default_corpus}",
            "--policy=heuristic:threshold=100",
            f"--output={prefix}",
            "--split=test_unseen_codebases",
            "--max_modules=3",
            "--num_workers=2",
            "--gin_bindings=evaluate_policy.evaluate.progress=False",
        ],
        check=True,
        capture_output=True,
    )
    with open(prefix + ".csv") as f:
        rows = list(csv.DictReader(f))
    with open(prefix + ".summary.json") as f:
        summary = json.load(f)
    assert len(rows) == 3 and summary["modules"] == 3
    assert summary["policy"] == "heuristic:threshold=100"
    assert sum(int(r["oz_size"]) for r in rows) == summary["oz_total"]
    assert all(int(r["delta"]) == int(r["policy_size"]) - int(r["oz_size"]) for r in rows)
    # The default corpus's unseen-codebase test is double_conversion and lz4 (compiler_opt/rl/splits.py).
    with open(prefix + ".by_codebase.json") as f:
        by_codebase = json.load(f)
    assert sorted(by_codebase) == ["double_conversion", "lz4"]
    assert sum(s["oz_total"] for s in by_codebase.values()) == summary["oz_total"]


def test_an_evaluation_csv_reads_back_with_failed_sizes_as_none(tmp_path):
    evaluations = [
        evaluate_policy_lib.ModuleEvaluation("a/x", 100, 90, 4, "ok"),
        evaluate_policy_lib.ModuleEvaluation("a/y", 50, None, 0, "timeout", "killed"),
    ]
    prefix = str(tmp_path / "eval_validation")
    evaluate_policy_lib.write(prefix, evaluations, evaluate_policy_lib.summarize("p", evaluations))
    read = evaluate_policy_lib.read_csv(prefix + ".csv")
    assert (read["a/x"].oz_size, read["a/x"].policy_size, read["a/x"].ok) == (100, 90, True)
    assert (read["a/y"].oz_size, read["a/y"].policy_size, read["a/y"].status, read["a/y"].ok) == (
        50,
        None,
        "timeout",
        False,
    )


def test_a_csv_of_another_kind_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("name,size\nx,1\n")
    with pytest.raises(ValueError, match="other.csv is not an evaluation CSV"):
        evaluate_policy_lib.read_csv(str(path))


def test_a_damaged_row_is_refused_naming_the_file_and_line(tmp_path):
    path = tmp_path / "eval_validation.csv"
    path.write_text("module,oz_size,policy_size,delta,ratio,status\na/x,100,90,-10,0.9,ok\na/y,1O0,,,,ok\n")
    with pytest.raises(ValueError, match="eval_validation.csv:3: not a row of sizes"):
        evaluate_policy_lib.read_csv(str(path))
