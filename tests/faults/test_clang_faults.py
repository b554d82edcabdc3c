"""Faults of the compiler during one compile: the compile fails with its reason, leaves no process, FIFO or temporary
directory behind, and the collection run goes on with the other modules."""

import os
import time

import pytest

from bench.testkit import injection
from compiler_opt.rl import env, policies
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.imitation_learning import profiles
from compiler_opt.rl.inlining import task as task_lib

pytestmark = pytest.mark.integration

_TIMEOUT_S = 1.5


def _collect(modules, output_dir):
    return injection.collect_with_heuristic(modules, output_dir, timeout_s=_TIMEOUT_S)


@pytest.mark.parametrize(
    "mode, status, reason",
    [
        ("crash", env.FAILED, "clang exited with signal SIGSEGV"),
        ("exit_before_header", env.FAILED, "exit code 70\nfake clang: internal compiler error before the header"),
        ("stall", env.TIMEOUT, f"compile exceeded the {_TIMEOUT_S:g} s timeout"),
    ],
    ids=["crash", "exit_before_header", "stall"],
)
def test_a_compiler_fault_fails_only_its_module_with_the_reason_and_cleans_up(
    mode, status, reason, small_modules, fake_bin, compile_tmp, tmp_path
):
    faulty, *healthy = small_modules[:3]
    injection.write_fake_clang(fake_bin, mode, after=1, only=faulty.bc_path)
    out = str(tmp_path / "out")

    summary = _collect(small_modules[:3], out)

    by_module = {p.module: p for p in profiles.read_jsonl(os.path.join(out, collection.PROFILES_FILE))}
    assert summary["failed_modules"] == [faulty.name]
    outcome = by_module[faulty.name].results["heuristic"]
    assert (outcome.status, by_module[faulty.name].best) == (status, None)
    assert reason in outcome.error
    assert set(injection.read_records(out)) == {m.name for m in healthy}
    assert os.listdir(compile_tmp) == []
    injection.assert_no_process_mentions(compile_tmp)


def test_a_compiler_that_exits_leaving_a_child_has_its_whole_process_group_killed(small_modules, tmp_path):
    clang = injection.write_fake_clang(str(tmp_path / "bin"), "orphan")
    workdir = str(tmp_path / "work")
    os.makedirs(workdir)

    result = env.compile_module(
        small_modules[0], policies.parse("heuristic"), task=task_lib.InliningForSizeTask(clang=clang), tmp_root=workdir
    )

    assert result.status == env.FAILED and "exit code 70" in result.error
    injection.assert_no_process_mentions(workdir)


def test_a_compiler_that_keeps_sending_without_reading_advice_times_out(small_modules, tmp_path):
    clang = injection.write_fake_clang(str(tmp_path / "bin"), "flood")
    workdir = str(tmp_path / "work")
    os.makedirs(workdir)
    start = time.monotonic()

    result = env.compile_module(
        small_modules[0],
        policies.parse("heuristic"),
        task=task_lib.InliningForSizeTask(clang=clang),
        timeout_s=_TIMEOUT_S,
        tmp_root=workdir,
    )

    assert result.status == env.TIMEOUT
    assert time.monotonic() - start < _TIMEOUT_S + 10
    assert os.listdir(workdir) == []
    injection.assert_no_process_mentions(workdir)
