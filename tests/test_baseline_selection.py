"""Specification of baseline selection: greedy by bytes saved on the oracle, and the select_baselines tool on a tiny
corpus of real modules with real clang-22."""

import json
import os
import subprocess
import sys

import gin
import pytest

from compiler_opt.rl import baseline_selection, corpus, policies
from tests import gin_test_base

# Sizes in bytes, by hand: a helps m1 by 10; b helps m1 by 5 and m2 by 20; c helps m3 by 10; d equals -Oz.
TABLE = {
    "m1": {"heuristic": 100, "a": 90, "b": 95, "c": 100, "d": 100},
    "m2": {"heuristic": 200, "a": 210, "b": 180, "c": 200, "d": 200},
    "m3": {"heuristic": 50, "a": 50, "b": 50, "c": 40, "d": 50},
}


def test_greedy_adds_the_baseline_that_saves_most_then_the_next_on_the_new_oracle():
    steps = baseline_selection.greedy_select(TABLE, ["a", "b", "c", "d"], max_baselines=4)
    assert [s.added for s in steps] == ["heuristic", "b", "c", "a"]
    # -Oz alone is the reference: 350 bytes. b takes 25 off, then c 10 (a would only save 5 once b is in).
    assert [s.oracle_total for s in steps] == [350, 325, 315, 310]
    assert [s.bytes_saved for s in steps] == [0, 25, 10, 5]
    assert [s.compiles for s in steps] == [3, 6, 9, 12]
    assert steps[1].bytes_saved_per_compile == pytest.approx(25 / 3, abs=1e-3)
    assert steps[-1].oracle_ratio == pytest.approx(310 / 350)


def test_greedy_stops_at_k_and_when_nothing_saves_a_byte():
    assert [s.added for s in baseline_selection.greedy_select(TABLE, ["a", "b", "c"], max_baselines=2)] == [
        "heuristic",
        "b",
    ]
    steps = baseline_selection.greedy_select(TABLE, ["d", "a"], max_baselines=10)
    assert [s.added for s in steps] == ["heuristic", "a"]


def test_a_failed_compile_counts_as_no_help_and_modules_without_oz_are_left_out():
    table = {
        "m1": {"heuristic": 100, "a": None},
        "m2": {"heuristic": 200, "a": 150},
        "m3": {"heuristic": None, "a": 10},
    }
    steps = baseline_selection.greedy_select(table, ["a"], max_baselines=2)
    assert [(s.oz_total, s.oracle_total) for s in steps] == [(300, 300), (300, 250)]
    assert steps[-1].modules_won == 1


def test_a_candidate_not_measured_everywhere_is_an_error_naming_it():
    table = {"m1": {"heuristic": 100, "a": 90}, "m2": {"heuristic": 100}}
    with pytest.raises(ValueError, match=r"\['a'\] were not measured on every module"):
        baseline_selection.greedy_select(table, ["a"], max_baselines=2)


class GinFileTest(gin_test_base.GinTestCase):
    def test_the_written_gin_file_binds_bc_max_baselines_to_the_chosen_set(self):
        from compiler_opt.rl.imitation_learning import bc_max_lib  # noqa: F401 - registers bc_max.run

        steps = baseline_selection.greedy_select(TABLE, ["a", "b", "c"], max_baselines=3)
        text = baseline_selection.gin_text(steps[-1].baselines, steps, "hand-built table")
        gin.parse_config(text)
        assert gin.query_parameter("bc_max.run.baselines") == ("heuristic", "b", "c")


@pytest.fixture(scope="module")
def tiny_corpus(default_corpus, tmp_path_factory):
    """Four small real modules of the default corpus (C and C++), as a corpus directory."""
    modules = sorted(corpus.Corpus.load(default_corpus), key=lambda m: m.size_bytes)
    chosen = modules[len(modules) // 3 : len(modules) // 3 + 4]
    root = tmp_path_factory.mktemp("tiny_corpus")
    for m in chosen:
        (root / m.name).parent.mkdir(parents=True, exist_ok=True)
        os.link(m.bc_path, root / (m.name + ".bc"))
        os.link(m.bc_path[: -len(".bc")] + ".cmd", root / (m.name + ".cmd"))
    corpus.write_corpus_description(str(root), [m.name for m in chosen])
    return str(root)


@pytest.mark.integration
def test_select_baselines_tool_on_a_tiny_corpus(tiny_corpus, tmp_path):
    out = tmp_path / "select"
    candidates = "('heuristic:threshold=225', 'heuristic:threshold=25', 'heuristic:inline-call-penalty=100')"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.tools.select_baselines",
            f"--data_path={tiny_corpus}",
            "--split=all",
            f"--output_dir={out}",
            "--num_workers=2",
            f"--gin_bindings=select_baselines.run.candidates = {candidates}",
            "--gin_bindings=select_baselines.run.max_baselines = 3",
        ],
        check=True,
        capture_output=True,
    )
    report = json.loads((out / "selection.json").read_text())
    measurements = [json.loads(line) for line in (out / "measurements.jsonl").read_text().splitlines()]
    assert len(measurements) == 4 * 4 and all(m["status"] == "ok" for m in measurements)
    # Playing the heuristic interactively is stock -Oz: K = 1 is the reference itself.
    assert report["steps"][0]["added"] == "heuristic" and report["steps"][0]["oracle_ratio"] == 1.0
    assert 2 <= len(report["steps"]) <= 3 and report["steps"][-1]["oracle_ratio"] < 1.0
    # Threshold 225 inlines far more than -Oz's 5: it changes decisions on these modules.
    assert report["candidates"]["heuristic:threshold=225"]["decisions_changed"] > 0
    gin_text = (out / "baselines.gin").read_text()
    assert "bc_max.run.baselines = (" in gin_text and all(f"'{b}'," in gin_text for b in report["chosen"])
    assert policies.parse_all(report["chosen"])[0].name == "heuristic"
