"""Storage faults: a full disk, half-written or damaged files. Either the run stops with a clear error or it repairs
what it owns (temporaries, cache entries); what was committed before stays intact, and a rerun completes it."""

import errno
import glob
import os
import tempfile

import pytest

from bench.testkit import injection, trajectory_records
from compiler_opt.rl import atomic_file, generate_vocab_lib
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection
from compiler_opt.rl.imitation_learning import profiles, trajectory_dataset

pytestmark = pytest.mark.integration


def _collect(modules, output_dir, cache_dir=None):
    return injection.collect_with_heuristic(modules, output_dir, cache_dir=cache_dir)


def _files(directory):
    """{relative path: bytes} of every file under `directory`."""
    result = {}
    for path in glob.glob(os.path.join(directory, "**"), recursive=True):
        if os.path.isfile(path):
            with open(path, "rb") as f:
                result[os.path.relpath(path, directory)] = f.read()
    return result


@pytest.fixture
def disk(tmp_path):
    with injection.FillableDisk(str(tmp_path / "disk")) as result:
        yield result


def test_a_full_disk_stops_collection_keeping_the_committed_modules(disk, small_modules, tmp_path):
    reference = str(tmp_path / "reference")
    _collect(small_modules[:3], reference)
    out = os.path.join(disk.path, "out")
    _collect(small_modules[:2], out)
    committed = _files(out)

    disk.fill()
    with pytest.raises(Exception, match="No space left on device"):
        _collect(small_modules[:3], out)
    assert _files(out) == committed
    disk.free()
    _collect(small_modules[:3], out)

    assert injection.read_records(out) == injection.read_records(reference)


@pytest.mark.skipif(not injection.can_mount_tmpfs(), reason="needs permission to mount a tmpfs")
def test_a_full_disk_under_the_compiles_fails_each_module_saying_so_and_a_retry_completes(
    small_modules, tmp_path, monkeypatch
):
    reference = str(tmp_path / "reference")
    _collect(small_modules[:2], reference)
    out = str(tmp_path / "out")
    with injection.FillableDisk(str(tmp_path / "compile_tmp"), size="1m") as disk:
        monkeypatch.setattr(tempfile, "tempdir", disk.path)
        disk.fill()
        summary = _collect(small_modules[:2], out)
        disk.free()
        assert os.listdir(disk.path) == []
    monkeypatch.undo()

    assert summary["failed_modules"] == sorted(m.name for m in small_modules[:2])
    errors = [p.results["heuristic"].error for p in profiles.read_jsonl(os.path.join(out, collection.PROFILES_FILE))]
    assert len(errors) == 2 and all(f"No space left on device in {disk.path}" in e for e in errors), errors
    injection.collect_with_heuristic(small_modules[:2], out, retry_failed=True)
    assert injection.read_records(out) == injection.read_records(reference)


def test_a_full_compile_cache_disk_costs_no_compile(small_modules, tmp_path, monkeypatch):
    cache_dir = str(tmp_path / "cache")
    write_bytes = atomic_file.write_bytes

    def no_space_in_cache(path, data):
        if path.startswith(cache_dir + os.sep):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        write_bytes(path, data)

    monkeypatch.setattr(atomic_file, "write_bytes", no_space_in_cache)
    summary = _collect(small_modules[:2], str(tmp_path / "out"), cache_dir=cache_dir)

    assert summary["failed_modules"] == [] and summary["records"] == 2


@pytest.mark.parametrize("damage", [b"", b"PK\x03\x04 half of an npz"], ids=["empty", "truncated"])
def test_a_damaged_compile_cache_entry_is_recompiled(damage, small_modules, tmp_path):
    cache_dir = str(tmp_path / "cache")
    reference = str(tmp_path / "reference")
    _collect(small_modules[:1], reference, cache_dir=cache_dir)
    for entry in glob.glob(os.path.join(cache_dir, "*", "*.npz")):
        with open(entry, "wb") as f:
            f.write(damage)

    summary = _collect(small_modules[:1], str(tmp_path / "out"), cache_dir=cache_dir)

    # Both cached compiles are redone: the heuristic's and the stock -Oz reference.
    assert summary["failed_modules"] == [] and summary["compiles_now"] == 2
    assert injection.read_records(str(tmp_path / "out")) == injection.read_records(reference)


def test_half_written_files_of_a_killed_run_are_removed_and_the_rerun_completes(small_modules, tmp_path):
    reference = str(tmp_path / "reference")
    _collect(small_modules[:2], reference)
    out = str(tmp_path / "out")
    _collect(small_modules[:1], out)
    leftovers = injection.plant_half_written(out, small_modules[1].name, "abc")

    _collect(small_modules[:2], out)

    assert not any(os.path.exists(path) for path in leftovers)
    assert injection.read_records(out) == injection.read_records(reference)


def test_a_damaged_profile_stops_the_rerun_naming_the_file_and_the_fix(small_modules, tmp_path):
    out = str(tmp_path / "out")
    _collect(small_modules[:2], out)
    path = os.path.join(out, collection.PROFILES_DIR, collection.module_key(small_modules[0].name) + ".json")
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    committed = _files(out)

    with pytest.raises(ValueError, match=f"{path} is not a module profile .*delete it to collect its module again"):
        _collect(small_modules[:2], out)
    assert _files(out) == committed


def _damage_middle(path):
    with open(path, "r+b") as f:
        f.seek(os.path.getsize(path) // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))


@pytest.fixture
def shards(tmp_path):
    """Two trajectory shards and their vocab; the second shard is damaged after the vocab is written."""
    files = trajectory_records.write_heuristic_shards(str(tmp_path / "data"), shards=2, modules_per_shard=3)
    vocab = str(tmp_path / "vocab")
    generate_vocab_lib.generate_vocab(files, vocab, generate_vocab_lib.VocabConfig(num_buckets=50))
    return files, vocab


def test_a_damaged_trajectory_shard_stops_vocab_generation_naming_it(shards, tmp_path):
    files, _ = shards
    _damage_middle(files[1])

    with pytest.raises(trajectory_dataset.TrajectoryError, match=f"damaged trajectory records in {files[1]} .*rerun"):
        generate_vocab_lib.generate_vocab(files, str(tmp_path / "vocab2"))


def test_a_damaged_trajectory_shard_stops_training_naming_it_and_keeps_the_checkpoint(shards, tmp_path):
    from compiler_opt.rl.imitation_learning import weighted_bc_trainer_lib as trainer_lib

    files, vocab = shards
    root = str(tmp_path / "model")
    small = dict(batch_size=32, hidden_units=(8,), shuffle_buffer_size=256, checkpoint_interval=10)
    trainer_lib.train(files, vocab, root, config=trainer_lib.TrainerConfig(num_steps=10, **small))
    committed = _files(root)
    _damage_middle(files[1])

    with pytest.raises(trajectory_dataset.TrajectoryError, match=f"damaged trajectory records in {files[1]} "):
        trainer_lib.train(files, vocab, root, config=trainer_lib.TrainerConfig(num_steps=20, **small))

    assert {k: v for k, v in _files(root).items() if not k.startswith("train/")} == {
        k: v for k, v in committed.items() if not k.startswith("train/")
    }
