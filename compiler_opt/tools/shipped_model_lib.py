"""The model measured is the model shipped: one exported policy, three evaluations, the same decisions and objects.

Collection, evaluation and every quality figure decide with the numpy path of a policy (`fast_policy.npz`,
compiler_opt.rl.saved_policy); the trainer's artefact is the TF SavedModel; a user's compiler runs the AOT-compiled
plugin (compiler_opt.tools.export_model_lib). `check_module` compiles one module three times, from its own `.cmd`:

  numpy        interactive mode, every decision taken by the numpy path (what collection and evaluation play);
  saved_model  interactive mode, every decision taken by the SavedModel's `action` signature in TensorFlow;
  plugin       stock clang-22 with `-fpass-plugin=libbcmax_inliner.so` and no host (release-mode features).

Decisions: at every state of the saved_model compile (the features clang sent), the numpy path's decision and logit
margin are computed and compared with the SavedModel's decision by `saved_policy.compare_decisions`: equal wherever
|margin| >= saved_policy.TIE_MARGIN, near ties counted. The plugin reports no decisions: it agrees when its object
is byte-identical to the numpy compile's (clang's output is deterministic for one input and one set of decisions, so
identical objects are what identical decisions give; a differing decision almost always changes the code).

Objects: the three object files, byte for byte (whole files). A module is *identical* when all three are.
"""

from __future__ import annotations

import dataclasses
import filecmp
import os
import tempfile
from collections.abc import Iterable, Sequence

from compiler_opt.rl import env, policies, saved_policy
from compiler_opt.rl.inlining import task as task_lib

# Policies loaded in this process, by (path, fast path allowed): a worker loads each once.
_LOADED: dict[tuple[str, bool], saved_policy.SavedPolicy] = {}


@dataclasses.dataclass(frozen=True)
class LoadedPolicyPlayer:
    """Plays a saved policy's greedy decisions in interactive mode, through the numpy path (`fast=True`, the sidecar
    must be valid) or through the SavedModel's `action` signature (`fast=False`). Picklable: it travels as a path."""

    path: str
    fast: bool

    @property
    def name(self) -> str:
        return f"{'numpy' if self.fast else 'saved_model'}:{self.path}"

    extra_args: tuple[str, ...] = ()

    @property
    def model(self) -> saved_policy.SavedPolicy:
        key = (self.path, self.fast)
        if key not in _LOADED:
            model = saved_policy.SavedPolicy.load(self.path, allow_fast_path=self.fast)
            if model.uses_fast_path != self.fast:
                raise saved_policy.PolicyLoadError(
                    f"{self.path}: its {saved_policy.FAST_POLICY_FILENAME} is missing or was written for another "
                    "SavedModel, so the numpy path cannot be checked; re-export the policy with the trainer"
                )
            _LOADED[key] = model
        return _LOADED[key]

    def new_episode(self, header):
        return policies.model_decider(self.model, header, self.name)


@dataclasses.dataclass(frozen=True)
class CheckJob:
    """One module to check (picklable). policy: a `saved_policy` dir with its numpy sidecar; plugin: the exported
    libbcmax_inliner.so of that policy."""

    module: object
    policy: str
    plugin: str
    task: task_lib.InliningForSizeTask
    timeout_s: float = 600.0


@dataclasses.dataclass(frozen=True)
class ModuleCheck:
    """One module's verdict. status "ok" or "failed" (a compile failed; `error` says which and why).

    decisions: decisions of the saved_model compile, `inlined` of them to inline; the comparison fields count, over
    those states, the numpy decisions that differ from the SavedModel's, those of them outside the near ties, and
    the near ties.
    *_object_identical: that compile's object equals the numpy compile's byte for byte.
    text_sizes: llvm-size text column (bytes) of the numpy, saved_model and plugin objects.
    """

    module: str
    status: str
    decisions: int = 0
    inlined: int = 0
    differing: int = 0
    differing_outside_ties: int = 0
    near_ties: int = 0
    saved_model_object_identical: bool = False
    plugin_object_identical: bool = False
    text_sizes: tuple[int, int, int] | None = None
    error: str = ""

    @property
    def identical(self) -> bool:
        return self.status == env.OK and self.saved_model_object_identical and self.plugin_object_identical


def check_module(job: CheckJob) -> ModuleCheck:
    """Runs in a worker: the three compiles of `job.module` and their comparison. Never raises for a failed compile."""
    numpy_player = LoadedPolicyPlayer(job.policy, fast=True)
    saved_model_player = LoadedPolicyPlayer(job.policy, fast=False)
    with tempfile.TemporaryDirectory(prefix="bcmax-shipped-") as tmp:
        objects = {kind: os.path.join(tmp, f"{kind}.o") for kind in ("numpy", "saved_model", "plugin")}
        results = {
            "numpy": env.compile_module(
                job.module, numpy_player, task=job.task, timeout_s=job.timeout_s, keep_object=objects["numpy"]
            ),
            "saved_model": env.compile_module(
                job.module,
                saved_model_player,
                task=job.task,
                timeout_s=job.timeout_s,
                keep_object=objects["saved_model"],
            ),
            "plugin": env.compile_plain(
                job.module,
                task=job.task,
                extra_args=(f"-fpass-plugin={job.plugin}",),
                timeout_s=job.timeout_s,
                keep_object=objects["plugin"],
            ),
        }
        failed = [f"{kind}: {r.error}" for kind, r in results.items() if not r.ok]
        if failed:
            return ModuleCheck(module=job.module.name, status=env.FAILED, error=env.clip_error("\n".join(failed)))
        states = results["saved_model"].features
        numpy_model = numpy_player.model
        if results["saved_model"].horizon:
            comparison = saved_policy.compare_decisions(
                results["saved_model"].actions, numpy_model.action_batch(states), numpy_model.margin_batch(states)
            )
        else:
            comparison = saved_policy.DecisionComparison(0, 0, 0, 0)
        return ModuleCheck(
            module=job.module.name,
            status=env.OK,
            decisions=comparison.decisions,
            inlined=int(results["saved_model"].actions.sum()),
            differing=comparison.differing,
            differing_outside_ties=comparison.differing_outside_ties,
            near_ties=comparison.near_ties,
            saved_model_object_identical=filecmp.cmp(objects["numpy"], objects["saved_model"], shallow=False),
            plugin_object_identical=filecmp.cmp(objects["numpy"], objects["plugin"], shallow=False),
            text_sizes=tuple(results[kind].text_size for kind in ("numpy", "saved_model", "plugin")),
        )


@dataclasses.dataclass(frozen=True)
class CheckSummary:
    """Totals over the checked modules. modules_identical: modules whose three objects are byte-identical.
    decisions / inlined: the SavedModel's decisions and how many inline. differing_decisions /
    differing_outside_ties / near_ties: numpy vs SavedModel, summed over modules.
    agree: every module compiled, every object identical, no differing decision outside the near ties."""

    modules_total: int
    modules_identical: int
    modules_failed: tuple[str, ...]
    decisions: int
    inlined: int
    differing_decisions: int
    differing_outside_ties: int
    near_ties: int
    tie_margin: float
    plugin_objects_differ: tuple[str, ...]
    saved_model_objects_differ: tuple[str, ...]

    @property
    def agree(self) -> bool:
        return self.modules_identical == self.modules_total and self.differing_outside_ties == 0


def summarize(checks: Iterable[ModuleCheck]) -> CheckSummary:
    checks = sorted(checks, key=lambda c: c.module)
    ok = [c for c in checks if c.status == env.OK]
    return CheckSummary(
        modules_total=len(checks),
        modules_identical=sum(c.identical for c in checks),
        modules_failed=tuple(c.module for c in checks if c.status != env.OK),
        decisions=sum(c.decisions for c in ok),
        inlined=sum(c.inlined for c in ok),
        differing_decisions=sum(c.differing for c in ok),
        differing_outside_ties=sum(c.differing_outside_ties for c in ok),
        near_ties=sum(c.near_ties for c in ok),
        tie_margin=saved_policy.TIE_MARGIN,
        plugin_objects_differ=tuple(c.module for c in ok if not c.plugin_object_identical),
        saved_model_objects_differ=tuple(c.module for c in ok if not c.saved_model_object_identical),
    )


def check(
    modules: Sequence, policy: str, plugin: str, executor, *, timeout_s: float = 600.0, progress: bool = False
) -> tuple[list[ModuleCheck], CheckSummary]:
    """Checks every module on `executor`; returns the per-module verdicts (sorted by module) and their summary."""
    task = task_lib.InliningForSizeTask()
    policy = os.path.abspath(policy)
    LoadedPolicyPlayer(policy, fast=True).model  # noqa: B018 - a missing or stale sidecar fails here, once.
    jobs = [CheckJob(m, policy, os.path.abspath(plugin), task, timeout_s) for m in modules]
    checks = executor.map_all(check_module, jobs, progress)
    checks.sort(key=lambda c: c.module)
    return checks, summarize(checks)
