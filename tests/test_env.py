"""Specification of one interactive compile (`compiler_opt.rl.env`) on real clang-22 and real source files."""

import dataclasses
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from bench.testkit import injection
from compiler_opt.rl import env, policies
from compiler_opt.rl.inlining import task as task_lib

_TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")


@dataclasses.dataclass(frozen=True)
class SourceModule:
    """A module compiled from source with the clang driver (the env only needs `name` and `command`)."""

    name: str
    path: str

    def command(self, clang, obj_path, extra_args=()):
        driver = clang.replace("clang", "clang++") if self.path.endswith(".cpp") else clang
        return [driver, "-Oz", "-c", self.path, "-o", obj_path, *extra_args]


C_MODULE = SourceModule("callsites", os.path.join(_TESTDATA, "callsites.c"))
CPP_MODULE = SourceModule("templates", os.path.join(_TESTDATA, "templates.cpp"))


def _stock_text_size(module, tmp_path):
    obj = str(tmp_path / f"{module.name}.stock.o")
    subprocess.run(module.command("clang-22", obj), check=True)
    return task_lib.InliningForSizeTask().score(obj).text_size


def _children_of_this_process():
    """Compiler processes (clang or its setpriv and sh launchers) whose parent is this test process; children that other
    tests of the session left (e.g. helper servers) are not the compile's."""
    me = str(os.getpid())
    result = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0].startswith(("R", "S", "D", "T", "t", "Z")):
            try:
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            if comm.startswith(("clang", "setpriv", "sh")):
                result.append((int(pid), fields[0]))
    return result


@dataclasses.dataclass(frozen=True)
class CallbackPolicy:
    """A test policy: `fn(step, observation) -> decision`."""

    fn: object
    name: str = "callback"
    extra_args: tuple = ()

    def new_episode(self, header):
        step = iter(range(1 << 30))
        return lambda obs: self.fn(next(step), obs)


@pytest.mark.integration
@pytest.mark.parametrize("module", [C_MODULE, CPP_MODULE], ids=lambda m: m.name)
def test_playing_the_heuristic_reproduces_stock_clang_size(module, tmp_path):
    result = env.compile_module(module, policies.parse("heuristic"))
    assert result.ok, result.error
    assert result.horizon > 0
    assert result.text_size == _stock_text_size(module, tmp_path)


@pytest.mark.integration
def test_result_records_every_decision_and_feature():
    result = env.compile_module(C_MODULE, policies.parse("heuristic"))
    assert len(result.features) == 39
    assert all(v.shape == (result.horizon, 1) and v.dtype == np.int64 for v in result.features.values())
    assert result.actions.tolist() == result.features["inlining_default"][:, 0].tolist()


@pytest.mark.integration
def test_text_section_size_matches_llvm_size_sysv(tmp_path):
    obj = str(tmp_path / "m.o")
    result = env.compile_module(C_MODULE, policies.parse("never"), keep_object=obj)
    sysv = subprocess.run(["llvm-size-22", "-A", obj], capture_output=True, text=True, check=True).stdout
    text_line = next(line for line in sysv.splitlines() if line.startswith(".text "))
    assert result.text_section_size == int(text_line.split()[1])


@pytest.mark.integration
def test_never_inlining_gives_all_zero_actions_and_a_different_size():
    never = env.compile_module(C_MODULE, policies.parse("never"))
    heuristic = env.compile_module(C_MODULE, policies.parse("heuristic"))
    assert never.ok and not never.actions.any()
    assert never.text_size != heuristic.text_size


@pytest.mark.integration
def test_inline_threshold_baseline_changes_decisions():
    results = {
        spec: env.compile_module(C_MODULE, policies.parse(spec)).actions.tolist()
        for spec in ("heuristic", "heuristic:threshold=-50", "heuristic:threshold=1000")
    }
    assert len({tuple(a) for a in results.values()}) > 1


@pytest.mark.integration
def test_replaying_a_trajectory_reproduces_its_size():
    flipped = env.compile_module(C_MODULE, CallbackPolicy(lambda i, obs: int(i % 2 == 0)))
    replay = policies.ReplayPolicy(tuple(flipped.actions.tolist()), then=policies.parse("never"))
    again = env.compile_module(C_MODULE, replay)
    assert again.actions.tolist() == flipped.actions.tolist()
    assert again.text_size == flipped.text_size


@pytest.mark.integration
def test_clang_failing_before_the_header_is_reported_with_its_stderr(tmp_path):
    missing = SourceModule("missing", str(tmp_path / "does_not_exist.c"))
    result = env.compile_module(missing, policies.parse("heuristic"), tmp_root=str(tmp_path))
    assert result.status == env.FAILED
    assert "exit code 1" in result.error and "no such file" in result.error


@pytest.mark.integration
def test_clang_killed_mid_compile_is_reported_and_cleaned_up(tmp_path):
    def kill_clang(step, obs):
        if step == 1:
            for pid, _ in _children_of_this_process():
                os.kill(pid, signal.SIGKILL)
        return 1

    workdir = tmp_path / "work"
    workdir.mkdir()
    result = env.compile_module(C_MODULE, CallbackPolicy(kill_clang), tmp_root=str(workdir))
    assert result.status == env.FAILED
    assert "SIGKILL" in result.error
    assert os.listdir(workdir) == []
    assert _children_of_this_process() == []


@pytest.mark.integration
def test_a_hung_exchange_times_out_kills_clang_and_leaves_nothing(tmp_path):
    def stall(step, obs):
        time.sleep(0.5)
        return 1

    workdir = tmp_path / "work"
    workdir.mkdir()
    start = time.monotonic()
    result = env.compile_module(C_MODULE, CallbackPolicy(stall), timeout_s=0.3, tmp_root=str(workdir))
    assert result.status == env.TIMEOUT
    assert time.monotonic() - start < 30
    assert os.listdir(workdir) == []
    assert _children_of_this_process() == []


@pytest.mark.integration
def test_a_policy_exception_fails_the_compile_with_its_message():
    def boom(step, obs):
        raise RuntimeError("model exploded")

    result = env.compile_module(C_MODULE, CallbackPolicy(boom))
    assert result.status == env.FAILED and "model exploded" in result.error
    assert _children_of_this_process() == []


@pytest.mark.integration
def test_a_policy_needing_an_unsent_feature_stops_with_its_name(tmp_path):
    # A real exported policy that reads `magic_feature`, which clang-22 does not send: the compile stops at the header.
    path = injection.write_policy_needing(str(tmp_path / "policy"), "magic_feature")
    with pytest.raises(env.FeatureMismatchError, match=r"does not send: \['magic_feature'\]"):
        env.compile_module(C_MODULE, policies.parse(f"saved:{path}"), tmp_root=str(tmp_path))
    assert _children_of_this_process() == []
    assert [p for p in os.listdir(tmp_path) if p != "policy"] == []


def test_a_missing_compiler_names_what_to_install():
    task = task_lib.InliningForSizeTask(clang="clang-no-such-version")
    with pytest.raises(task_lib.ToolError, match="apt-get install clang-22"):
        env.compile_module(C_MODULE, policies.parse("heuristic"), task=task)


def test_an_object_that_cannot_be_measured_fails_that_compile_not_the_run(tmp_path):
    # clang exits 0 but the size tool rejects its object (as after a ThinLTO backend that wrote nothing): the compile
    # is a failure naming the object; the caller goes on with the next module.
    task = task_lib.InliningForSizeTask(llvm_size="false")
    interactive = env.compile_module(C_MODULE, policies.parse("heuristic"), task=task, tmp_root=str(tmp_path))
    stock = env.compile_plain(C_MODULE, task=task, tmp_root=str(tmp_path))
    for result in (interactive, stock):
        assert result.status == env.FAILED
        assert "exited 0 but its object cannot be measured" in result.error and ".o" in result.error
    assert os.listdir(tmp_path) == []


def test_a_clipped_error_keeps_its_reason_its_first_diagnostics_and_its_last_lines():
    reason = "clang exited with exit code 1"
    stderr = "\n".join(f"file.c:{i}:1: error: expected expression" for i in range(200))
    clipped = env.clip_error(f"{reason}\n{stderr}", limit=500)
    assert len(clipped) <= 500
    assert clipped.startswith(f"{reason}\nfile.c:0:1: error: expected expression\n")
    assert clipped.endswith("file.c:199:1: error: expected expression")
    assert "\n...\n" in clipped and "file.c:100:1:" not in clipped


def test_an_error_within_the_limit_is_kept_whole():
    assert (
        env.clip_error("clang exited with signal SIGKILL\nKilled", limit=500)
        == "clang exited with signal SIGKILL\nKilled"
    )


def test_a_compiler_whose_host_is_gone_before_the_death_signal_never_starts():
    """The launcher execs the compiler only while its parent is still the host that started it: a compiler orphaned
    before the death signal was set would run on (an interactive one would block forever opening its channel)."""
    ran = subprocess.run(
        [*env._die_with_host(), "sh", "-c", "echo compiled"], capture_output=True, text=True, check=False
    )
    assert (ran.returncode, ran.stdout) == (0, "compiled\n")
    gone = subprocess.run(
        [*env._die_with_host(host_pid=os.getpid() + 1_000_000), "sh", "-c", "echo compiled"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (gone.returncode, gone.stdout) == (env.HOST_GONE_EXIT, "")
