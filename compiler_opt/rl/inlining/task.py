"""The inlining-for-size task: which compiler flags put the inliner under a host's control, and how to score.

Reward convention (MLGO): the `text` column of `llvm-size` (Berkeley format) of the module's native object, in bytes.
The object's `.text` section size alone is recorded beside it.
"""

from __future__ import annotations

import dataclasses
import shutil
import struct
import subprocess

import gin

# The feature through which clang-22 reports its -Oz heuristic's decision (sent with
# `-inliner-interactive-include-default`).
DEFAULT_DECISION_FEATURE = "inlining_default"
ADVICE_NAME = "inlining_decision"

# The features Debian's clang-22 (22.1.8) sends in interactive mode, in its header order (the last one only with
# `-inliner-interactive-include-default`). The environment always decodes the header it receives; this list serves
# tools that need the names without a compiler at hand (benchmarks, synthetic data).
CLANG22_FEATURES = (
    "sroa_savings", "sroa_losses", "load_elimination", "call_penalty", "call_argument_setup",
    "load_relative_intrinsic", "lowered_call_arg_setup", "indirect_call_penalty", "jump_table_penalty",
    "case_cluster_penalty", "switch_default_dest_penalty", "switch_penalty", "unsimplified_common_instructions",
    "num_loops", "dead_blocks", "simplified_instructions", "constant_args", "constant_offset_ptr_args",
    "callsite_cost", "cold_cc_penalty", "last_call_to_static_bonus", "is_multiple_blocks", "nested_inlines",
    "nested_inline_cost_estimate", "threshold", "callee_basic_block_count", "callsite_height", "node_count",
    "nr_ctant_params", "cost_estimate", "edge_count", "caller_users", "caller_conditionally_executed_blocks",
    "caller_basic_block_count", "callee_conditionally_executed_blocks", "callee_users", "is_callee_avail_external",
    "is_caller_avail_external", "inlining_default",
)  # fmt: skip


class ToolError(Exception):
    """A required LLVM tool is missing or unusable."""


class ObjectError(Exception):
    """The object a compile wrote cannot be measured (empty, not ELF, rejected by llvm-size): that compile failed,
    not the run."""


@dataclasses.dataclass(frozen=True)
class Score:
    """Sizes of one object file, in bytes."""

    text_size: int
    text_section_size: int


def find_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolError(
            f"{name!r} was not found on PATH. Install Debian's clang-22 and llvm-22 "
            "(`make setup`, or `apt-get install clang-22 llvm-22`)."
        )
    return path


@gin.configurable(module="inlining")
@dataclasses.dataclass(frozen=True)
class InliningForSizeTask:
    """Compile at the corpus' own optimization level (-Oz) with the ML inliner in interactive mode.

    clang: the compiler binary (must be clang >= 22: clang-19 always sends 0 as `inlining_default`).
    llvm_size: the `llvm-size` binary used for the reward.
    """

    clang: str = "clang-22"
    llvm_size: str = "llvm-size-22"

    def interactive_args(self, channel_base: str) -> tuple[str, ...]:
        return (
            "-mllvm",
            "-enable-ml-inliner=release",
            "-mllvm",
            f"-inliner-interactive-channel-base={channel_base}",
            "-mllvm",
            "-inliner-interactive-include-default",
        )

    def score(self, obj_path: str) -> Score:
        """Sizes of the object at `obj_path`. Raises ToolError (llvm-size missing) or ObjectError (this object)."""
        try:
            out = subprocess.run(
                [self.llvm_size, obj_path], capture_output=True, text=True, check=True, timeout=60
            ).stdout
        except FileNotFoundError:
            find_tool(self.llvm_size)
            raise
        except subprocess.CalledProcessError as e:
            raise ObjectError(f"{self.llvm_size} failed on {obj_path}: {e.stderr.strip()}") from None
        lines = out.strip().splitlines()
        if len(lines) < 2 or not lines[0].split() or lines[0].split()[0] != "text":
            raise ObjectError(f"unexpected {self.llvm_size} output for {obj_path}: {out!r}")
        return Score(
            text_size=int(lines[1].split()[0]),
            text_section_size=elf_section_size(obj_path, ".text"),
        )


def elf_section_size(path: str, section: str) -> int:
    """Size in bytes of one section of a 64-bit little-endian ELF file (0 when absent)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ObjectError(f"{path} is not a 64-bit little-endian ELF object")
    (shoff,) = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    str_off = struct.unpack_from("<Q", data, shoff + shstrndx * shentsize + 0x18)[0]
    wanted = section.encode()
    for i in range(shnum):
        base = shoff + i * shentsize
        name_off = struct.unpack_from("<I", data, base)[0]
        start = str_off + name_off
        if data[start : data.index(b"\0", start)] == wanted:
            return struct.unpack_from("<Q", data, base + 0x20)[0]
    return 0
