"""Fault-injection helpers shared by bench/faults.py and the tests in tests/faults/.

- `write_fake_clang`: an executable stand-in for clang-22 that misbehaves in one way (see fake_compiler.py).
- `copy_corpus`: an MLGO corpus of copies (never links) of real modules, safe to damage.
- `processes_mentioning`: live processes whose command line contains a marker (to find leftovers).
- `read_records`: a collection's trajectory records by module, for comparing runs.
- `FillableDisk`: a directory whose file system can be filled up (a tmpfs, or a stand-in).
- `write_wrong_signature_policy`, `write_nan_policy`, `write_policy_needing`: saved policies that must be refused.
- `SignalClangPolicy`, `write_limited_clang`: the real clang-22 killed, stopped or limited mid-compile.
- `truncate_file`: a file cut short, as by a crash mid-write.
"""

from __future__ import annotations

import dataclasses
import errno
import glob
import os
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

from compiler_opt.rl import atomic_file, corpus

# Small real modules of the default corpus (pinned sources), each with a few inlining decisions; under the split of
# TINY_LOOP_BINDINGS (no unseen-files test) the last one is validation, the others train.
SMALL_MODULES = (
    "zstd/common/zstd_common",
    "brotli/enc/histogram",
    "brotli/enc/encoder_dict",
    "zstd/compress/hist",
    "brotli/common/transform",
)
FAKE_COMPILER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fake_compiler.py")
REAL_CLANG = "/usr/bin/clang-22"


# Gin bindings that make one BC-MAX iteration tiny (seconds of training) for interruption tests and the bench.
TINY_LOOP_BINDINGS = (
    "weighted_bc.TrainerConfig.num_steps=40",
    "weighted_bc.TrainerConfig.checkpoint_interval=10",
    "weighted_bc.TrainerConfig.batch_size=32",
    "weighted_bc.TrainerConfig.hidden_units=(8,)",
    "generate_vocab.VocabConfig.num_buckets=100",
    "generate_bc_trajectories.collect.progress=False",
    "evaluate_policy.evaluate.progress=False",
    "bc_max.run.progress=False",
    "bc_max.run.evaluate_train=False",
    "splits.SplitPolicy.test_file_fraction=0.0",
)
# The split those bindings make.
TINY_LOOP_SPLIT_POLICY = dict(test_file_fraction=0.0)


def plant_half_written(output_dir: str, module_name: str, tag: str) -> list[str]:
    """Leaves the temporaries a collector killed mid-commit of `module_name` would leave; returns their paths."""
    from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

    key = collection.module_key(module_name)
    paths = [
        os.path.join(output_dir, collection.RECORDS_DIR, f".tmp-{tag}1-{key}.tfrecord"),
        os.path.join(output_dir, collection.PROFILES_DIR, f".tmp-{tag}2-{key}.json"),
        os.path.join(output_dir, f".tmp-{tag}3-{collection.PROFILES_FILE}"),
    ]
    for path in paths:
        with open(path, "wb") as f:
            f.write(b"\x0a\x03half")
    return paths


def collect_with_heuristic(modules, output_dir: str, **settings):
    """Collection with one worker, the heuristic alone and no exploration; `settings` go to `collect`."""
    from compiler_opt.distributed import local
    from compiler_opt.rl import policies
    from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection

    with local.LocalExecutor(1) as executor:
        return collection.collect(
            modules,
            policies.parse_all(["heuristic"]),
            output_dir,
            executor,
            max_exploration_steps=0,
            progress=False,
            **settings,
        )


def write_fake_clang(
    directory: str, mode: str, *, after: int = 1, only: str = "", log: str = "", name: str = "clang-22"
) -> str:
    """Writes `directory/name`, a clang-22 that misbehaves as `mode` (fake_compiler.py); returns its path."""
    real = shutil.which("clang-22") or REAL_CLANG
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, name)
    command = [sys.executable, FAKE_COMPILER, f"--mode={mode}", f"--real={real}", f"--after={after}"]
    command += [f"--only={only}", f"--log={log}"]
    with open(path, "w") as f:
        f.write(f'#!/bin/sh\nexec {shlex.join(command)} -- "$@"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path


def copy_corpus(root: str, modules) -> str:
    """Writes an MLGO corpus in `root` holding copies of `modules` (ModuleSpecs); returns `root`."""
    for module in modules:
        bc_path, cmd_path = corpus.module_files(root, module.name)
        os.makedirs(os.path.dirname(bc_path), exist_ok=True)
        shutil.copyfile(module.bc_path, bc_path)
        shutil.copyfile(module.bc_path[: -len(".bc")] + ".cmd", cmd_path)
    corpus.write_corpus_description(root, [m.name for m in modules])
    return root


def processes_mentioning(marker: str) -> list[tuple[int, str]]:
    """(pid, command line) of live processes other than this one whose command line contains `marker`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(pid) != os.getpid():
            found.append((int(pid), cmdline))
    return found


def assert_no_process_mentions(marker: str, grace_s: float = 5.0) -> None:
    """Killed processes may take a moment to leave /proc; one still there after `grace_s` is a leak."""
    deadline = time.monotonic() + grace_s
    while (left := processes_mentioning(marker)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == [], f"processes left behind: {left}"


def read_records(output_dir: str) -> dict[str, object]:
    """{module name: tf.train.SequenceExample} of a collection's records; a module seen twice raises."""
    import tensorflow as tf

    result = {}
    for path in sorted(glob.glob(os.path.join(output_dir, "records", "*.tfrecord"))):
        for raw in tf.data.TFRecordDataset(path):
            example = tf.train.SequenceExample.FromString(raw.numpy())
            name = example.context.feature["module_name"].bytes_list.value[0].decode()
            if name in result:
                raise AssertionError(f"module {name} has two records")
            result[name] = example
    return result


def can_mount_tmpfs() -> bool:
    with tempfile.TemporaryDirectory() as probe:
        ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", probe], capture_output=True)
        if ok.returncode != 0:
            return False
        subprocess.run(["umount", probe], check=True)
    return True


class FillableDisk:
    """A directory whose file system can be filled up and freed again (a context manager).

    A tmpfs of `size` mounted at `path` when this process may mount one (`real` is True); otherwise a stand-in that
    makes every atomic_file write raise ENOSPC while "full" (TensorFlow's own writers are not covered then).
    """

    def __init__(self, path: str, size: str = "4m"):
        self.path, self.size = path, size
        self.real = can_mount_tmpfs()
        self._filler = None
        self._write_with = None

    def __enter__(self):
        os.makedirs(self.path, exist_ok=True)
        if self.real:
            subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.size}", "tmpfs", self.path], check=True)
        return self

    def __exit__(self, *exc):
        self.free()
        if self.real:
            subprocess.run(["umount", "-l", self.path], check=False, capture_output=True)

    def fill(self) -> None:
        if self.real:
            self._filler = os.path.join(self.path, "filler")
            with open(self._filler, "wb", buffering=0) as f:
                try:
                    while True:
                        f.write(b"\0" * 4096)
                except OSError:
                    pass
            return

        def no_space(path, write):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)

        self._write_with = atomic_file.write_with
        atomic_file.write_with = no_space

    def set_read_only(self, read_only: bool) -> None:
        """Remounts the tmpfs read-only (writes fail with EROFS) or read-write again; needs `real`."""
        if not self.real:
            raise RuntimeError("a read-only file system needs a tmpfs (mount permission)")
        option = "ro" if read_only else "rw"
        subprocess.run(["mount", "-o", f"remount,{option}", self.path], check=True, capture_output=True)

    def free(self) -> None:
        if self._filler:
            os.unlink(self._filler)
            self._filler = None
        if self._write_with:
            atomic_file.write_with = self._write_with
            self._write_with = None


def write_wrong_signature_policy(directory: str) -> str:
    """A SavedModel whose only signature is `serving_default` (float32 in, float32 out); returns its directory."""
    import tensorflow as tf

    module = tf.Module()
    module.scale = tf.Variable(2.0)
    module.serve = tf.function(lambda x: {"y": x * module.scale}, input_signature=[tf.TensorSpec([1], tf.float32)])
    path = os.path.join(directory, "saved_policy")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def _export_policy(directory: str, names: tuple[str, ...], nan: bool = False) -> str:
    """A small random policy over features `names`, exported in MLGO layout by the trainer's exporter (SavedModel and
    numpy sidecar); NaN logits if `nan`. Returns its saved_policy directory."""
    import numpy as np

    from compiler_opt.rl import policy_saver
    from compiler_opt.rl.imitation_learning import policy_network
    from compiler_opt.rl.inlining import features as features_lib

    quantiles = tuple(np.arange(1, 9, dtype=np.float32) for _ in names)
    normalization = features_lib.Normalization(names, quantiles, features_lib.FeatureConfig(dropped_features=()))
    network = policy_network.InliningPolicyNetwork(normalization, hidden_units=(4,), activation="relu")
    network.create_variables()
    if nan:
        network.trainable_variables[-1].assign(np.full(2, np.nan, np.float32))
    saved, _ = policy_saver.export_policies(network, directory)
    return saved


def write_nan_policy(directory: str) -> str:
    """A policy in MLGO layout, written by the trainer's exporter, whose logits are NaN; returns its saved_policy."""
    return _export_policy(directory, ("callee_basic_block_count", "cost_estimate"), nan=True)


def write_policy_needing(directory: str, feature: str) -> str:
    """A valid policy in MLGO layout that reads `feature` besides `cost_estimate` (e.g. one clang-22 does not send);
    returns its saved_policy directory."""
    return _export_policy(directory, tuple(sorted(("cost_estimate", feature))))


def truncate_file(path: str, keep: float = 0.5) -> str:
    """Cuts `path` to `keep` of its size (a write interrupted by a crash or a full disk); returns `path`."""
    os.truncate(path, int(os.path.getsize(path) * keep))
    return path


def interactive_clang_children() -> list[int]:
    """Pids of this process's children that are clang processes in interactive mode (talking to this host)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid() and b"-inliner-interactive-channel-base=" in cmdline:
            found.append(int(pid))
    return found


@dataclasses.dataclass(frozen=True)
class SignalClangPolicy:
    """Plays LLVM's heuristic, and at decision `at_step` of a compile sends `signum` to the real clang-22 process it
    is answering (SIGKILL: a crash; SIGSTOP: a hang). The compile must run in this process (LocalExecutor(1))."""

    signum: int
    at_step: int = 1

    @property
    def name(self) -> str:
        return f"heuristic+{signal.Signals(self.signum).name}@{self.at_step}"

    extra_args: tuple[str, ...] = ()

    @property
    def cache_id(self) -> str:
        return self.name

    def new_episode(self, header):
        from compiler_opt.rl import policies

        decide = policies.HeuristicPolicy().new_episode(header)
        step = [0]

        def signal_then_decide(obs):
            if step[0] == self.at_step:
                for pid in interactive_clang_children():
                    os.kill(pid, self.signum)
            step[0] += 1
            return decide(obs)

        return signal_then_decide


def write_limited_clang(directory: str, limit: str, *, only: str = "") -> str:
    """Writes `directory/clang-22`: the real clang-22 run under the shell limit `ulimit <limit>` (e.g. `-f 1`: files
    of at most 512 bytes, so the kernel kills clang with SIGXFSZ when it writes the object) for compiles whose
    arguments contain `only`, unchanged otherwise. Returns its path."""
    real = shutil.which("clang-22") or REAL_CLANG
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, "clang-22")
    with open(path, "w") as f:
        f.write(
            f'#!/bin/sh\ncase "$*" in *{shlex.quote(only)}*) ulimit {limit} ;; esac\nexec {shlex.quote(real)} "$@"\n'
        )
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return path
