"""Specification of the one atomic writer (`compiler_opt/rl/atomic_file.py`): commits of files and directories, and
the removal of temporaries that killed writers leave."""

import os
import stat
import subprocess
import sys

import pytest

from compiler_opt.rl import atomic_file


@pytest.fixture(scope="module")
def dead_pid():
    """The pid of a process that has exited (and been reaped)."""
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(proc.stdout)


def _entries(directory):
    return sorted(os.listdir(directory))


def test_a_written_file_has_the_content_and_the_umask_permissions_and_no_temporary_is_left(tmp_path):
    old_umask = os.umask(0o027)
    try:
        atomic_file.write_text(str(tmp_path / "a.json"), "{}\n")
    finally:
        os.umask(old_umask)
    assert (tmp_path / "a.json").read_text() == "{}\n"
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o640
    assert _entries(tmp_path) == ["a.json"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = str(tmp_path / "a.json")
    atomic_file.write_text(path, "old")

    def half_then_fail(tmp):
        with open(tmp, "w") as f:
            f.write("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_file.write_with(path, half_then_fail)
    assert (tmp_path / "a.json").read_text() == "old"
    assert _entries(tmp_path) == ["a.json"]


def test_a_staged_directory_replaces_the_old_one_whole(tmp_path):
    final = tmp_path / "saved_policy"
    final.mkdir()
    (final / "old_only.pb").write_text("old")
    (final / "shared.json").write_text("old")

    with atomic_file.staged_dir(str(final)) as tmp:
        assert os.path.dirname(tmp) == str(tmp_path) and _entries(tmp) == []
        (tmp_path / os.path.basename(tmp) / "shared.json").write_text("new")

    assert _entries(final) == ["shared.json"]
    assert (final / "shared.json").read_text() == "new"
    assert _entries(tmp_path) == ["saved_policy"]


def test_a_staged_directory_that_fails_leaves_the_old_one_untouched(tmp_path):
    final = tmp_path / "vocab"
    final.mkdir()
    (final / "a.buckets").write_text("1.0\n")

    with pytest.raises(RuntimeError), atomic_file.staged_dir(str(final)) as tmp:
        (tmp_path / os.path.basename(tmp) / "b.buckets").write_text("2.0\n")
        raise RuntimeError("killed mid-export")

    assert _entries(final) == ["a.buckets"]
    assert _entries(tmp_path) == ["vocab"]


def test_a_staged_directory_is_created_where_none_was(tmp_path):
    with atomic_file.staged_dir(str(tmp_path / "new" / "dir")) as tmp:
        (tmp_path / "new" / os.path.basename(tmp) / "x").write_text("x")
    assert _entries(tmp_path / "new") == ["dir"]
    assert (tmp_path / "new" / "dir" / "x").read_text() == "x"


def test_stale_temporaries_of_every_kind_are_removed_and_live_ones_and_outputs_kept(tmp_path, dead_pid):
    stale_files = [f".tmp-{dead_pid}-0a1b2c3d-profile.json", f"a.buckets.tmp-{dead_pid}", ".tmp-k2j4h5l6-records"]
    stale_dirs = [f".tmp-{dead_pid}-0a1b2c3d-saved_policy", ".saved_policy.tmp-3x8q1z", f"saved_policy.old-{dead_pid}"]
    stale_dirs += ["vocab.tmp", "ckpt-40_temp"]
    live = [f".tmp-{os.getpid()}-0a1b2c3d-being_written.json", "a.buckets.tmp-1"]
    outputs = ["profiles.jsonl", "notes.tmp", "saved_policy", "ckpt-40.index"]
    for name in stale_files + live + ["profiles.jsonl", "notes.tmp", "ckpt-40.index"]:
        (tmp_path / name).write_text("x")
    for name in stale_dirs + ["saved_policy"]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "part").write_text("x")

    removed = atomic_file.remove_stale_temporaries(str(tmp_path), also=("*_temp",))

    assert removed == len(stale_files) + len(stale_dirs)
    assert _entries(tmp_path) == sorted(live + outputs)


def test_in_a_directory_the_run_does_not_own_only_its_targets_dead_temporaries_go(tmp_path, dead_pid):
    names = [
        f".tmp-{dead_pid}-0a1b2c3d-export",
        f".tmp-{dead_pid}-0a1b2c3d-my-export",
        f".tmp-{os.getpid()}-0a1b2c3d-export",
        ".tmp-k2j4h5l6-export",
        "vocab.tmp",
    ]
    for name in names:
        (tmp_path / name).mkdir()

    assert atomic_file.remove_stale_temporaries(str(tmp_path), target="export") == 1
    assert f".tmp-{dead_pid}-0a1b2c3d-export" not in _entries(tmp_path)
    assert len(_entries(tmp_path)) == len(names) - 1


def test_a_missing_directory_has_nothing_to_remove(tmp_path):
    assert atomic_file.remove_stale_temporaries(str(tmp_path / "absent")) == 0
