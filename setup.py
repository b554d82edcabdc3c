"""Packaging for compiler_opt-bcmax. Versions are pinned in requirements.txt only."""

import setuptools

_CONSOLE_SCRIPTS = {
    "bcmax-extract-corpus": "compiler_opt.tools.extract_corpus:run",
    "bcmax-make-default-corpus": "compiler_opt.tools.make_default_corpus:run",
    "bcmax-generate-trajectories": "compiler_opt.rl.imitation_learning.generate_bc_trajectories:run",
    "bcmax-generate-vocab": "compiler_opt.tools.generate_vocab:run",
    "bcmax-train": "compiler_opt.rl.imitation_learning.weighted_bc_trainer:run",
    "bcmax": "compiler_opt.rl.imitation_learning.bc_max:run",
    "bcmax-evaluate": "compiler_opt.tools.evaluate_policy:run",
    "bcmax-export-model": "compiler_opt.tools.export_model:run",
    "bcmax-compare-builds": "compiler_opt.tools.compare_builds:run",
    "bcmax-es": "compiler_opt.es.es_trainer:run",
}

setuptools.setup(
    name="compiler_opt-bcmax",
    version="0.1.0",
    description="BC-MAX training of LLVM's ML inliner for code size, MLGO-compatible.",
    packages=setuptools.find_packages(include=["compiler_opt", "compiler_opt.*"]),
    python_requires=">=3.11,<3.12",
    entry_points={"console_scripts": [f"{name}={target}" for name, target in _CONSOLE_SCRIPTS.items()]},
)
