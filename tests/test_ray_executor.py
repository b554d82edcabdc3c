"""Specification of the Ray executor: same records as the local executor, on a real 2-node Ray cluster over loopback,
with bitcode read from the shared corpus or shipped through the object store, and through the loss of a node."""

import glob
import operator
import os
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from compiler_opt.distributed import local, ray_executor
from compiler_opt.distributed.ray_cluster import LoopbackCluster, free_port
from compiler_opt.rl import corpus, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as lib
from compiler_opt.rl.imitation_learning import trajectories

BASELINES = ("heuristic", "heuristic:threshold=50", "heuristic:threshold=500")
NUM_MODULES = 8


def test_the_local_executor_path_never_imports_ray():
    code = (
        "import sys\n"
        "from compiler_opt.distributed import executors\n"
        "with executors.make('local', 1) as e:\n"
        "    assert list(e.map_unordered(abs, [-1])) == [(-1, 1)]\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_address_where_no_cluster_listens_fails_fast_naming_the_fix():
    with pytest.raises(ConnectionError, match="ray start --head"):
        ray_executor.RayExecutor(f"127.0.0.1:{free_port()}")


def test_landing_shipped_bitcode_points_the_module_at_the_copy(tmp_path):
    spec = corpus.ModuleSpec(
        name="a/b", bc_path="/corpus/a/b.bc", cc1_args=("-cc1", "-fthinlto-index=/corpus/a/b.bc"), size_bytes=3
    )
    landed = ray_executor.land(_job(spec), ("module",), (b"BC\x00",), str(tmp_path))
    assert landed.module.bc_path.startswith(str(tmp_path)) and landed.module.bc_path.endswith("b.bc")
    with open(landed.module.bc_path, "rb") as f:
        assert f.read() == b"BC\x00"
    assert landed.module.cc1_args == ("-cc1", f"-fthinlto-index={landed.module.bc_path}")
    assert (landed.module.name, landed.module.size_bytes, landed.baselines) == ("a/b", 3, ())


@pytest.fixture(scope="module")
def small_corpus(default_corpus, tmp_path_factory):
    """A corpus directory of a handful of small real modules (C and C++) that have inlining decisions."""
    modules = sorted(corpus.Corpus.load(default_corpus), key=lambda m: m.size_bytes)
    chosen = modules[len(modules) // 4 : len(modules) // 4 + NUM_MODULES]
    root = tmp_path_factory.mktemp("ray_corpus")
    for m in chosen:
        dst = root / (m.name + ".bc")
        dst.parent.mkdir(parents=True, exist_ok=True)
        for src, ext in ((m.bc_path, ".bc"), (m.bc_path[: -len(".bc")] + ".cmd", ".cmd")):
            with open(src, "rb") as f:
                (root / (m.name + ext)).write_bytes(f.read())
    corpus.write_corpus_description(str(root), [m.name for m in chosen])
    return str(root)


@pytest.fixture(scope="module")
def local_records(small_corpus, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("local"))
    with local.LocalExecutor(2) as executor:
        lib.collect(_modules(small_corpus), policies.parse_all(BASELINES), out, executor, **_SETTINGS)
    return _records(out)


@pytest.fixture(scope="module")
def cluster():
    with LoopbackCluster(nodes=2, cpus_per_node=1) as c:
        yield c


_SETTINGS = {"max_exploration_steps": 1, "progress": False}


def _modules(corpus_dir):
    return list(corpus.Corpus.load(corpus_dir))


def _records(out):
    paths = sorted(glob.glob(os.path.join(out, "records", "*.tfrecord")))
    raw = [r.numpy() for path in paths for r in tf.data.TFRecordDataset(path)]
    first = tf.train.SequenceExample.FromString(raw[0])
    names = [k for k in first.feature_lists.feature_list if k not in trajectories.NON_FEATURE_LISTS]
    context_spec, sequence_spec = trajectories.parsing_spec(names)
    result = {}
    for r in raw:
        context, sequence, _ = tf.io.parse_sequence_example(
            [r], context_features=context_spec, sequence_features=sequence_spec
        )
        name = context["module_name"][0].numpy().decode()
        assert name not in result, f"{name} was written twice"
        result[name] = {k: v[0].numpy() for k, v in sequence.items()}
        result[name]["policy_name"] = context["policy_name"][0].numpy()
    return result


def _assert_same_records(got, want):
    assert sorted(got) == sorted(want)
    for name in want:
        assert got[name].keys() == want[name].keys(), name
        for key in want[name]:
            np.testing.assert_array_equal(got[name][key], want[name][key], err_msg=f"{name}:{key}")


def _cli(corpus_dir, out, cluster):
    return [
        sys.executable,
        "-m",
        "compiler_opt.rl.imitation_learning.generate_bc_trajectories",
        f"--data_path={corpus_dir}",
        f"--output_dir={out}",
        "--executor=ray",
        f"--ray_address={cluster.address}",
        f"--gin_bindings=ray_executor.RayExecutor.node_ip_address='{cluster.head_ip}'",
        "--gin_bindings=generate_bc_trajectories.collect.progress=False",
        f"--gin_bindings=generate_bc_trajectories.collect.max_exploration_steps={_SETTINGS['max_exploration_steps']}",
    ]


@pytest.mark.integration
def test_collection_on_ray_gives_exactly_the_records_of_the_local_executor(
    small_corpus, local_records, cluster, tmp_path
):
    out = str(tmp_path / "ray")
    run = subprocess.run(_cli(small_corpus, out, cluster), capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    _assert_same_records(_records(out), local_records)


@pytest.mark.integration
def test_bitcode_shipped_through_the_object_store_gives_the_same_records(
    small_corpus, local_records, cluster, tmp_path
):
    modules = _modules(small_corpus)
    out = str(tmp_path / "ray_shipped")
    with ray_executor.RayExecutor(cluster.address, node_ip_address=cluster.head_ip, ship_bitcode=True) as executor:
        assert executor.num_workers == 2
        seen = list(executor.map_unordered(operator.attrgetter("module.bc_path"), [_job(m) for m in modules]))
        lib.collect(modules, policies.parse_all(BASELINES), out, executor, **_SETTINGS)
    for job, worker_path in seen:
        assert worker_path != job.module.bc_path and "bcmax-shipped-" in worker_path
    _assert_same_records(_records(out), local_records)


@pytest.mark.integration
def test_losing_the_worker_node_mid_run_still_commits_every_module_exactly_once(small_corpus, local_records, tmp_path):
    out = str(tmp_path / "ray_fault")
    log = tmp_path / "driver.log"
    with LoopbackCluster(nodes=2, cpus_per_node=1) as faulty:
        with open(log, "wb") as f:
            proc = subprocess.Popen(_cli(small_corpus, out, faulty), stdout=f, stderr=subprocess.STDOUT)
        try:
            done_at_kill = _kill_worker_node_while_it_runs_a_job(faulty, os.path.join(out, "profiles"))
            proc.wait(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    output = log.read_text(errors="replace")
    assert proc.returncode == 0, output[-3000:]
    assert "will be retried" in output, "Ray resubmitted no task: the kill hit no running job"
    assert done_at_kill < NUM_MODULES
    profiles = sorted(os.listdir(os.path.join(out, "profiles")))
    assert len(profiles) == NUM_MODULES
    _assert_same_records(_records(out), local_records)


@pytest.mark.integration
def test_jobs_lost_beyond_their_retries_are_named_after_every_other_result():
    jobs = [0.1, 2.0, 2.0]
    with LoopbackCluster(nodes=2, cpus_per_node=1) as doomed:
        with ray_executor.RayExecutor(doomed.address, node_ip_address=doomed.head_ip, max_retries=0) as executor:
            results = executor.map_unordered(time.sleep, jobs)
            yielded = [next(results)]
            while not _running_a_job(doomed, node=1):
                time.sleep(0.05)
            doomed.kill_node(1)
            with pytest.raises(ray_executor.JobsLostError, match="rerun the same command") as lost:
                yielded.extend(results)
    assert lost.value.lost and len(yielded) + len(lost.value.lost) == len(jobs)


def _kill_worker_node_while_it_runs_a_job(cluster, profiles_dir, timeout_s=300.0) -> int:
    """Waits until a module is committed and the worker node is running a job, then kills that node (its raylet
    first). Returns how many modules were committed at that moment."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        done = len(os.listdir(profiles_dir)) if os.path.isdir(profiles_dir) else 0
        if done >= 1 and _running_a_job(cluster, node=1):
            cluster.kill_node(1)
            return done
        time.sleep(0.05)
    raise AssertionError("the worker node never ran a job")


def _running_a_job(cluster, node) -> bool:
    for pid in cluster.pids(node):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().startswith(b"ray::_run_job"):
                    return True
        except OSError:
            pass
    return False


def _job(module):
    return lib.ModuleJob(
        module=module,
        baselines=(),
        explorer=None,
        explore_from="best",
        max_exploration_steps=0,
        cache_dir=None,
        timeout_s=1.0,
        task=None,
    )
