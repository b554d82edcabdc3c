"""SIGKILL of a whole binary (its process group) at chosen points; rerunning the same command completes the work: no
module lost or written twice, collection results identical to an uninterrupted run, training resumed from its latest
checkpoint. The kills land exactly on commit points (bench/testkit/crash_at.py) or right after a checkpoint.
(A kill at a random time during collection: tests/test_generate_bc_trajectories.py.)"""

import glob
import json
import os
import random
import re
import signal
import subprocess
import sys

import pytest

from bench.testkit import injection, trajectory_records
from compiler_opt.distributed import local
from compiler_opt.rl import corpus, generate_vocab_lib, policies, saved_policy
from compiler_opt.rl.imitation_learning import bc_max_lib, profiles
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

pytestmark = pytest.mark.integration

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_BASELINES = ("heuristic", "heuristic:threshold=500")


def _run(module, args, **crash):
    """Runs `python -m module args` in a new session, through crash_at when `crash` names a kill point."""
    if crash:
        command = ["-m", "bench.testkit.crash_at", *(f"--{k}={v}" for k, v in crash.items()), "--", module, *args]
    else:
        command = ["-m", module, *args]
    return subprocess.run(
        [sys.executable, *command], cwd=_REPO, start_new_session=True, capture_output=True, text=True, timeout=600
    )


def _reference_collection(modules, output_dir):
    with local.LocalExecutor(1) as executor:
        collection.collect(
            modules, policies.parse_all(_BASELINES), output_dir, executor, max_exploration_steps=0, progress=False
        )
    return injection.read_records(output_dir)


def _temporaries(directory):
    return glob.glob(os.path.join(directory, "**", ".tmp-*"), recursive=True)


@pytest.fixture
def corpus_of_four(small_modules, tmp_path):
    return injection.copy_corpus(str(tmp_path / "corpus"), small_modules[:4])


def test_collection_killed_at_random_commit_points_resumes_to_the_uninterrupted_records(corpus_of_four, tmp_path):
    out = str(tmp_path / "out")
    args = [
        f"--data_path={corpus_of_four}",
        f"--output_dir={out}",
        "--num_workers=1",
        *(f"--baselines={b}" for b in _BASELINES),
        "--gin_bindings=generate_bc_trajectories.collect.progress=False",
        "--gin_bindings=generate_bc_trajectories.collect.max_exploration_steps=0",
    ]
    module = "compiler_opt.rl.imitation_learning.generate_bc_trajectories"
    rng = random.Random(8)

    for _ in range(2):
        killed = _run(module, args, event=rng.randrange(6))
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    finished = _run(module, args)

    assert finished.returncode == 0, finished.stderr[-3000:]
    modules = list(corpus.Corpus.load(corpus_of_four))
    assert injection.read_records(out) == _reference_collection(modules, str(tmp_path / "reference"))
    listed = [p.module for p in profiles.read_jsonl(os.path.join(out, collection.PROFILES_FILE))]
    assert sorted(listed) == sorted(m.name for m in modules)
    assert _temporaries(out) == []


def test_training_killed_after_a_checkpoint_resumes_from_it(tmp_path):
    files = trajectory_records.write_heuristic_shards(str(tmp_path / "data"), shards=1, modules_per_shard=4)
    vocab = str(tmp_path / "vocab")
    generate_vocab_lib.generate_vocab(files, vocab, generate_vocab_lib.VocabConfig(num_buckets=100))
    root = str(tmp_path / "model")
    args = [
        f"--trajectories={files[0]}",
        f"--vocab_dir={vocab}",
        f"--root_dir={root}",
        *(
            f"--gin_bindings=weighted_bc.TrainerConfig.{setting}"
            for setting in (
                "num_steps=500",
                "checkpoint_interval=100",
                "summary_interval=100",
                "batch_size=32",
                "hidden_units=(8,)",
                "shuffle_buffer_size=1024",
            )
        ),
    ]
    module = "compiler_opt.rl.imitation_learning.weighted_bc_trainer"
    checkpoint = random.Random(4).randint(1, 4)

    killed = _run(module, args, checkpoint=checkpoint)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    assert not os.path.exists(os.path.join(root, "training_summary.json"))
    finished = _run(module, args)

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert re.search(rf"Resumed from \S+ckpt-{100 * checkpoint} at step {100 * checkpoint}\b", finished.stderr)
    with open(os.path.join(root, "training_summary.json")) as f:
        assert json.load(f)["steps"] == 500
    saved_policy.SavedPolicy.load(os.path.join(root, "saved_policy"))


def test_the_bc_max_loop_killed_during_training_resumes_and_completes(small_modules, tmp_path):
    data_path = injection.copy_corpus(str(tmp_path / "corpus"), small_modules)
    root = str(tmp_path / "bcmax")
    args = [
        f"--data_path={data_path}",
        f"--root_dir={root}",
        "--iterations=1",
        "--max_exploration_steps=0",
        "--num_workers=1",
        *(f"--baselines={b}" for b in _BASELINES),
        "--gin_files=gin_configs/bc_max.gin",
        *(f"--gin_bindings={binding}" for binding in injection.TINY_LOOP_BINDINGS),
    ]
    module = "compiler_opt.rl.imitation_learning.bc_max"

    killed = _run(module, args, checkpoint=2)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    finished = _run(module, args)

    assert finished.returncode == 0, finished.stderr[-3000:]
    assert re.search(r"Resumed from \S+ckpt-20 at step 20\b", finished.stderr)
    it_dir = bc_max_lib.iteration_dir(root, 1)
    result = bc_max_lib.IterationResult.read(os.path.join(it_dir, bc_max_lib.ITERATION_FILE))
    assert (result.parts["train"].modules, result.parts["validation"].modules) == (4, 1)
    train = [m for m in corpus.Corpus.load(data_path) if m.name != injection.SMALL_MODULES[-1]]
    trajectories = os.path.join(it_dir, "trajectories")
    assert injection.read_records(trajectories) == _reference_collection(train, str(tmp_path / "reference"))
    with open(os.path.join(it_dir, "eval_validation.csv")) as f:
        assert [line.split(",")[0] for line in f.read().splitlines()[1:]] == [injection.SMALL_MODULES[-1]]
    assert _temporaries(trajectories) == []
