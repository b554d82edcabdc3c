"""Bad input modules and corpus descriptions: damaged bitcode fails only its module, with clang's reason, and the run
goes on; a description or command file that cannot be right stops the binary before any compile, naming the file and
the fix. (Missing files, empty corpora, duplicate names and ThinLTO corpora: tests/test_corpus.py.)"""

import json
import os
import random
import subprocess
import sys

import pytest

from bench.testkit import injection
from compiler_opt.distributed import local
from compiler_opt.rl import corpus, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.imitation_learning import profiles


def _collect(modules, output_dir):
    with local.LocalExecutor(1) as executor:
        return collection.collect(
            modules, policies.parse_all(["heuristic"]), output_dir, executor, max_exploration_steps=0, progress=False
        )


def _truncate(path):
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)


def _scramble(path):
    size = os.path.getsize(path)
    with open(path, "wb") as f:
        f.write(random.Random(size).randbytes(size))  # the same bytes on every run


def _one_long_invalid_line(path):
    """clang echoes the bad line in its error, escaped, far past the error length kept in profiles."""
    with open(path, "wb") as f:
        f.write(b"\xbe" * 3000)


@pytest.mark.integration
@pytest.mark.parametrize(
    "damage", [_truncate, _scramble, _one_long_invalid_line], ids=["truncated", "random_bytes", "long_stderr"]
)
def test_damaged_bitcode_fails_only_its_module_with_clangs_error(damage, small_corpus, tmp_path):
    modules = list(corpus.Corpus.load(small_corpus))
    damaged = modules[1]
    damage(damaged.bc_path)
    out = str(tmp_path / "out")

    summary = _collect(modules, out)

    assert summary["failed_modules"] == [damaged.name]
    profile = {p.module: p for p in profiles.read_jsonl(os.path.join(out, collection.PROFILES_FILE))}[damaged.name]
    error = profile.results["heuristic"].error
    assert error.startswith("clang exited with exit code 1")
    assert "error:" in error
    assert len(error) <= 2000
    assert set(injection.read_records(out)) == {m.name for m in modules} - {damaged.name}


@pytest.mark.parametrize("value", ["unknown", None, 1, "false"])
def test_a_thinlto_state_that_is_not_a_boolean_is_rejected_naming_the_file(value, small_corpus):
    path = os.path.join(small_corpus, corpus.DESCRIPTION_FILE)
    with open(path) as f:
        description = json.load(f)
    description["has_thinlto"] = value
    with open(path, "w") as f:
        json.dump(description, f)

    with pytest.raises(corpus.CorpusError, match=r"corpus_description.json: \"has_thinlto\" is .*set it to false"):
        corpus.Corpus.load(small_corpus)


def test_collecting_a_module_twice_is_rejected_naming_it(small_modules, tmp_path):
    with pytest.raises(ValueError, match=f"more than once: {small_modules[0].name};"):
        _collect([small_modules[0], small_modules[1], small_modules[0]], str(tmp_path / "out"))


@pytest.mark.parametrize(
    "binary, output_flag",
    [
        ("compiler_opt.rl.imitation_learning.generate_bc_trajectories", "--output_dir"),
        ("compiler_opt.rl.imitation_learning.bc_max", "--root_dir"),
        ("compiler_opt.es.es_trainer", "--root_dir"),
        ("compiler_opt.tools.select_baselines", "--output_dir"),
    ],
    ids=["collection", "bc_max", "es_trainer", "select_baselines"],
)
def test_every_corpus_binary_stops_before_any_compile_on_a_cmd_without_cc1_and_writes_nothing(
    binary, output_flag, small_corpus, fake_bin, tmp_path
):
    log = str(tmp_path / "clang.log")
    injection.write_fake_clang(fake_bin, "passthrough", log=log)
    name = corpus.Corpus.load(small_corpus).names[0]
    _, cmd_path = corpus.module_files(small_corpus, name)
    with open(cmd_path, "wb") as f:
        f.write(b"-Oz\0-c\0")
    out = str(tmp_path / "out")

    proc = subprocess.run(
        [sys.executable, "-m", binary, f"--data_path={small_corpus}", f"{output_flag}={out}", "--num_workers=1"],
        capture_output=True,
        text=True,
    )

    assert proc.returncode != 0
    assert f"{cmd_path} does not start with -cc1" in proc.stderr and "re-extract" in proc.stderr
    assert not os.path.exists(log) and not os.path.exists(out)
