"""A saved policy that cannot work (wrong signature, NaN outputs, truncated files, features the compiler does not send)
is refused with a clear error before any compile starts (or, for features, at the first compile's header).
(Loading such policies directly: tests/test_saved_policy.py.)"""

import glob
import os
import subprocess
import sys

import pytest

from bench.testkit import injection
from compiler_opt.distributed import local
from compiler_opt.rl import env, policies, saved_policy
from compiler_opt.rl.imitation_learning import generate_bc_trajectories_lib as collection


@pytest.fixture(scope="module")
def bad_policies(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_policies")
    return {
        "wrong_signature": injection.write_wrong_signature_policy(str(root / "wrong_signature")),
        "nan_outputs": injection.write_nan_policy(str(root / "nan")),
    }


@pytest.mark.integration
def test_evaluating_a_policy_with_nan_outputs_fails_before_any_compile(bad_policies, small_corpus, fake_bin, tmp_path):
    policy_dir = bad_policies["nan_outputs"]
    log = str(tmp_path / "clang.log")
    injection.write_fake_clang(fake_bin, "passthrough", log=log)
    output = str(tmp_path / "eval")

    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "compiler_opt.tools.evaluate_policy",
            f"--data_path={small_corpus}",
            f"--policy=saved:{policy_dir}",
            f"--output={output}",
            "--num_workers=1",
        ],
        capture_output=True,
        text=True,
    )

    assert proc.returncode != 0
    assert f"policy {policy_dir} outputs NaN" in proc.stderr
    assert not os.path.exists(log) and not os.path.exists(output + ".csv")


@pytest.mark.parametrize(
    "kind, message",
    [("wrong_signature", "SavedModel has no `action` signature"), ("nan_outputs", "outputs NaN")],
    ids=["wrong_signature", "nan_outputs"],
)
def test_a_bad_policy_spec_is_refused_when_parsed(kind, message, bad_policies):
    with pytest.raises(saved_policy.PolicyLoadError, match=f"{bad_policies[kind]}.*{message}"):
        policies.parse(f"saved:{bad_policies[kind]}")


@pytest.mark.integration
def test_collecting_with_a_policy_reading_a_feature_clang_does_not_send_stops_naming_it(small_modules, tmp_path):
    path = injection.write_policy_needing(str(tmp_path / "magic"), "magic_feature")
    out = str(tmp_path / "out")
    with local.LocalExecutor(1) as executor:
        with pytest.raises(env.FeatureMismatchError, match=r"magic/saved_policy needs .*\['magic_feature'\]"):
            collection.collect(
                small_modules[:2], policies.parse_all(["heuristic", f"saved:{path}"]), out, executor, progress=False
            )
    assert glob.glob(os.path.join(out, collection.PROFILES_DIR, "*.json")) == []


@pytest.mark.parametrize(
    "damaged, message",
    [
        ("saved_model.pb", "cannot load the SavedModel"),
        (os.path.join("variables", "variables.data-00000-of-00001"), "cannot load the SavedModel"),
        (saved_policy.FAST_POLICY_FILENAME, "unreadable policy sidecar"),
    ],
)
def test_a_policy_with_a_truncated_file_is_refused_when_parsed(damaged, message, tmp_path):
    path = injection.write_policy_needing(str(tmp_path / "policy"), "callee_users")
    policies.parse(f"saved:{path}")  # intact, it loads
    injection.truncate_file(os.path.join(path, damaged))
    with pytest.raises(saved_policy.PolicyLoadError, match=f"{path}.*{message}"):
        saved_policy.SavedPolicy.load(path)
