"""Helpers that exercise the product from outside: fault injectors and synthetic trajectory records.

They live under bench/ because benches must never import tests (docs/CONTRIBUTING.md), while tests may import
bench helpers; they are not under compiler_opt/ because no product code path uses them (they fake compilers, kill
processes and fill disks). Imports run one way: tests -> bench.testkit -> compiler_opt.

- injection.py: fake compilers, corpus copies, leftover-process checks, fillable disks, bad saved policies.
- fake_compiler.py: the misbehaving clang-22 stand-in that injection.write_fake_clang installs (stdlib only).
- crash_at.py: runs a binary and SIGKILLs its process group at a chosen commit point
  (`python -m bench.testkit.crash_at`).
- trajectory_records.py: small hand-built trajectory records (docs/CONTRACTS.md format).
"""
