"""On-disk cache of deterministic compiles: (module bitcode, command, compiler version, policy) -> CompileResult.

A compile under a deterministic policy always gives the same trajectory and size, so collection reuses it across runs
and BC-MAX iterations. Entries are `.npz` files (actions, one array per feature, JSON metadata) under
`<dir>/<key[:2]>/<key>.npz`, written atomically. Only successful compiles are cached. A damaged entry is deleted and
recomputed; an entry that cannot be written (full disk) is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import json
import os
import subprocess
import zipfile

import numpy as np
from absl import logging

from compiler_opt.rl import atomic_file, env
from compiler_opt.rl.inlining import task as task_lib

_FORMAT_VERSION = "1"


@dataclasses.dataclass(frozen=True)
class StockCompile:
    """Stands for the stock compile in the cache: the module's own command, no host, no ML flags (the -Oz reference
    every size ratio divides by)."""

    name: str = "stock"
    cache_id: str = "stock"
    extra_args: tuple[str, ...] = ()


STOCK = StockCompile()


@functools.lru_cache(maxsize=8)
def compiler_version(clang: str) -> str:
    try:
        out = subprocess.run([clang, "--version"], capture_output=True, text=True, check=True).stdout
    except FileNotFoundError:
        task_lib.find_tool(clang)
        raise
    return out.splitlines()[0].strip() if out else clang


@functools.lru_cache(maxsize=4096)
def _file_digest(path: str, mtime_ns: int, size: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_digest(path: str) -> str:
    st = os.stat(path)
    return _file_digest(path, st.st_mtime_ns, st.st_size)


@functools.cache
def _remove_stale_temporaries(directory: str) -> None:
    """Once per process and cache: removes entries left half-written by killed writers (live writers' are kept)."""
    if os.path.isdir(directory):
        for shard in os.scandir(directory):
            if shard.is_dir(follow_symlinks=False):
                atomic_file.remove_stale_temporaries(shard.path)


class CompileCache:
    def __init__(self, directory: str):
        self.directory = directory
        _remove_stale_temporaries(directory)

    def key(self, module, policy, task, extra_args: tuple[str, ...] = ()) -> str:
        parts = [
            _FORMAT_VERSION,
            file_digest(module.bc_path),
            "\0".join(module.command(task.clang, "OBJ", extra_args=tuple(extra_args))).replace(module.bc_path, "BC"),
            compiler_version(task.clang),
            policy.cache_id,
        ]
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def _path(self, key: str) -> str:
        return os.path.join(self.directory, key[:2], key + ".npz")

    def get(self, key: str) -> env.CompileResult | None:
        path = self._path(key)
        try:
            with open(path, "rb") as f, np.load(f, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode())
                features = {name: data["f:" + name] for name in meta["feature_names"]}
                actions = data["actions"]
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            with contextlib.suppress(OSError):
                os.unlink(path)  # A damaged entry is recomputed.
            return None
        return env.CompileResult(
            module=meta["module"],
            policy=meta["policy"],
            status=env.OK,
            text_size=meta["text_size"],
            text_section_size=meta["text_section_size"],
            actions=actions,
            features=features,
            seconds=meta["seconds"],
        )

    def put(self, key: str, result: env.CompileResult) -> None:
        if not result.ok:
            return
        meta = {
            "module": result.module,
            "policy": result.policy,
            "text_size": result.text_size,
            "text_section_size": result.text_section_size,
            "seconds": result.seconds,
            "feature_names": list(result.features),
        }
        arrays = {"f:" + k: v for k, v in result.features.items()}
        buf = io.BytesIO()
        np.savez_compressed(
            buf, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8), actions=result.actions, **arrays
        )
        try:
            atomic_file.write_bytes(self._path(key), buf.getvalue())
        except OSError as e:  # A full or read-only cache disk costs speed, never a compile.
            logging.warning("compile cache %s: entry not stored (%s)", self.directory, e)


def compile_cached(
    cache: CompileCache | None, module, policy, task: task_lib.InliningForSizeTask, timeout_s: float
) -> tuple[env.CompileResult, bool]:
    """`module` compiled under `policy` (or stock, for `STOCK`), from `cache` when it holds the compile; returns the
    result and whether it came from the cache. A fresh successful compile is stored."""
    key = cache.key(module, policy, task) if cache else None
    if cache and (hit := cache.get(key)) is not None:
        return hit, True
    if policy is STOCK:
        result = env.compile_plain(module, task=task, timeout_s=timeout_s)
    else:
        result = env.compile_module(module, policy, task=task, timeout_s=timeout_s)
    if cache:
        cache.put(key, result)
    return result, False
