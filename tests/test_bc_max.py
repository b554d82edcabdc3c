"""Smoke test of the BC-MAX loop binary on real modules with tiny budgets, and of its resumption."""

import json
import os
import subprocess
import sys

import pytest

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
    assert "held-out" in first.stdout and "report.md" in first.stdout.splitlines()[-1]
    for path in ("report.md", "results.json", "size_ratio.png", "size_change.png", "wins.png"):
        assert os.path.getsize(os.path.join(root, path)) > 0, path
    saved = os.path.join(root, "iteration_1", "model", "saved_policy")
    assert os.path.isfile(os.path.join(saved, "saved_model.pb"))
    assert os.path.isfile(os.path.join(saved, "output_spec.json"))
    result = bc_max_lib.IterationResult.read(os.path.join(root, "iteration_1", bc_max_lib.ITERATION_FILE))
    assert result.held_out_ratio is not None and result.train_ratio is not None
    assert result.train_oracle_ratio <= 1.0

    second = _bc_max(default_corpus, root)
    assert second.stdout.splitlines()[-3:] == first.stdout.splitlines()[-3:]
    with open(os.path.join(root, "results.json")) as f:
        assert json.load(f)["best_iteration"] == 1


class ShouldStopTest(GinTestCase):
    def _results(self, *ratios):
        return [
            bc_max_lib.IterationResult(
                iteration=i + 1,
                policy="p",
                baselines=(),
                train_ratio=None,
                held_out_ratio=r,
                train_oracle_ratio=None,
                held_out_oracle_ratio=None,
                held_out_geomean=None,
                held_out_smaller=0,
                held_out_larger=0,
                wins={},
                train_modules=0,
                held_out_modules=0,
                seconds=0.0,
            )
            for i, r in enumerate(ratios)
        ]

    def test_stops_when_the_held_out_ratio_did_not_improve_within_patience(self):
        assert bc_max_lib._should_stop(self._results(0.99, 0.995), patience=1)
        assert not bc_max_lib._should_stop(self._results(0.99, 0.98), patience=1)
        assert not bc_max_lib._should_stop(self._results(0.99, 0.995), patience=2)
        assert bc_max_lib._should_stop(self._results(0.99, 0.995, 0.999), patience=2)
