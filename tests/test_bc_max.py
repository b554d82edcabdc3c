"""Smoke test of the BC-MAX loop binary on real modules with tiny budgets, and of its resumption."""

import dataclasses
import json
import os
import subprocess
import sys

import pytest

from compiler_opt.rl import splits
from compiler_opt.rl.imitation_learning import bc_max_lib
from tests.gin_test_base import GinTestCase

pytestmark = pytest.mark.integration


def _bc_max(data_path, root_dir):
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.rl.imitation_learning.bc_max",
            f"--data_path={data_path}",
            f"--root_dir={root_dir}",
            "--max_modules=8",
            "--iterations=1",
            "--max_exploration_steps=1",
            "--num_workers=2",
            "--gin_files=gin_configs/bc_max.gin",
            "--gin_bindings=weighted_bc.TrainerConfig.num_steps=50",
            "--gin_bindings=generate_bc_trajectories.collect.progress=False",
            "--gin_bindings=evaluate_policy.evaluate.progress=False",
            "--gin_bindings=bc_max.run.progress=False",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=os.path.join(os.path.dirname(__file__), ".."),
    )


def test_one_iteration_trains_exports_evaluates_reports_and_resumes(default_corpus, tmp_path):
    root = str(tmp_path / "bcmax")
    first = _bc_max(default_corpus, root)
    assert "report.md" in first.stdout.splitlines()[-1]
    for title in ("train", "validation", "test: unseen codebases", "test: unseen files"):
        assert title in first.stdout, title
    for path in ("report.md", "results.json", "size_ratio.png", "size_change.png", "wins.png"):
        assert os.path.getsize(os.path.join(root, path)) > 0, path
    saved = os.path.join(root, "iteration_1", "model", "saved_policy")
    assert os.path.isfile(os.path.join(saved, "saved_model.pb"))
    assert os.path.isfile(os.path.join(saved, "output_spec.json"))
    result = bc_max_lib.IterationResult.read(os.path.join(root, "iteration_1", bc_max_lib.ITERATION_FILE))
    for part in splits.PARTS:
        figures = result.parts[part]
        assert figures.modules >= 1 and figures.ratio is not None, part
        assert figures.oracle_ratio <= 1.0, part

    second = _bc_max(default_corpus, root)
    table = first.stdout[first.stdout.index("BC-MAX on") :]
    assert second.stdout.endswith(table)
    with open(os.path.join(root, "results.json")) as f:
        results = json.load(f)
    assert results["best_iteration"] == 1
    assert sorted(results["iterations"][0]["parts"]) == sorted(splits.PARTS)
    assert results["iterations"][0]["test_codebases"], "per-codebase test figures"


def _result(iteration, validation_ratio):
    part = bc_max_lib.PartFigures(
        modules=1, evaluated=1, ratio=None, oracle_ratio=None, geomean=None, smaller=0, larger=0
    )
    parts = {p: part for p in splits.PARTS}
    parts[splits.VALIDATION] = dataclasses.replace(part, ratio=validation_ratio)
    return bc_max_lib.IterationResult(
        iteration=iteration, policy="p", baselines=(), parts=parts, test_codebases=(), wins={}, seconds=0.0
    )


class ShouldStopTest(GinTestCase):
    def _results(self, *ratios):
        return [_result(i + 1, r) for i, r in enumerate(ratios)]

    def test_stops_when_the_validation_ratio_did_not_improve_within_patience(self):
        assert bc_max_lib._should_stop(self._results(0.99, 0.995), patience=1)
        assert not bc_max_lib._should_stop(self._results(0.99, 0.98), patience=1)
        assert not bc_max_lib._should_stop(self._results(0.99, 0.995), patience=2)
        assert bc_max_lib._should_stop(self._results(0.99, 0.995, 0.999), patience=2)
