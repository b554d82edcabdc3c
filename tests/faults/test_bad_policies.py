"""A saved policy that cannot work (wrong signature, NaN outputs, features the compiler does not send) is refused with
a clear error before any compile starts. (Loading such policies directly: tests/test_saved_policy.py.)"""

import os
import subprocess
import sys

import pytest

from bench.testkit import injection
from compiler_opt.rl import env, policies, protocol, saved_policy


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


def test_a_policy_reading_a_feature_the_compiler_does_not_send_stops_at_the_header(tmp_path):
    policy_dir = tmp_path / "saved_policy"
    policy_dir.mkdir()
    (policy_dir / "saved_model.pb").write_bytes(b"")
    policy = policies.SavedModelPolicy(str(policy_dir))
    policy._model = saved_policy.SavedPolicy(str(policy_dir), ("callee_users", "magic_feature"), None, None)
    sent = ("callee_users", "inlining_default")
    header = protocol.Header(
        features=tuple(protocol.TensorSpec(name, "<i8", (1,)) for name in sent),
        advice=protocol.TensorSpec("inlining_decision", "<i8", (1,)),
    )

    with pytest.raises(env.FeatureMismatchError, match=r"does not send: \['magic_feature'\]"):
        policy.new_episode(header)
