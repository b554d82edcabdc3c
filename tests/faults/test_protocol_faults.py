"""A compiler stream that breaks the interactive protocol gives a ProtocolError, quickly, never another exception or a
hang; through a real channel the compile fails with that reason long before its timeout. (Hand-picked bad streams
and fuzzing of bytes after a valid header: tests/test_protocol.py.)"""

import json
import os
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.testkit import injection
from compiler_opt.rl import env, policies, protocol
from compiler_opt.rl.inlining import task as task_lib

# Every example must decode (or fail) within this time: a slow example is as much a bug as a hang.
_DEADLINE_MS = 2000
_FUZZ = settings(max_examples=300, deadline=_DEADLINE_MS, suppress_health_check=[HealthCheck.too_slow])

_KEYS = st.sampled_from(["features", "advice", "name", "type", "shape", "port", "observation", "context"])
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_KEYS | st.text(max_size=3), inner, max_size=5),
    max_leaves=24,
)
_SPEC = st.fixed_dictionaries(
    {
        "name": st.text(max_size=6) | _JSON,
        "type": st.sampled_from(["int64_t", "int32_t", "float", "bfloat16"]) | _JSON,
        "shape": st.lists(st.integers(-2, 4), max_size=3) | _JSON,
    }
)
_HEADER = st.fixed_dictionaries({"features": st.lists(_SPEC | _JSON, max_size=4) | _JSON, "advice": _SPEC | _JSON})
_MESSAGE = st.fixed_dictionaries({"observation": _JSON}) | st.fixed_dictionaries({"context": _JSON}) | _JSON


def _valid_stream() -> bytes:
    spec = {"type": "int64_t", "port": 0, "shape": [1]}
    header = {"features": [dict(spec, name="a"), dict(spec, name="b")], "advice": dict(spec, name="inlining_decision")}
    parts = [json.dumps(header).encode() + b"\n", b'{"context": "f"}\n']
    for i in range(3):
        parts.append(json.dumps({"observation": i}).encode() + b"\n" + np.array([i, -i], "<i8").tobytes() + b"\n")
    return b"".join(parts)


def _decode(data: bytes, chunk: int) -> None:
    decoder = protocol.StreamDecoder()
    for i in range(0, len(data), chunk):
        decoder.feed(data[i : i + chunk])
        while decoder.next_message() is not None:
            pass
    decoder.finish()


def _decodes_or_raises_protocol_error(data: bytes, chunk: int) -> None:
    try:
        _decode(data, chunk)
    except protocol.ProtocolError:
        pass


@_FUZZ
@given(_HEADER | _JSON, st.lists(_MESSAGE, max_size=3), st.binary(max_size=64), st.integers(1, 97))
def test_any_json_header_and_messages_decode_or_raise_protocol_error(header, messages, tail, chunk):
    lines = [json.dumps(header).encode()] + [json.dumps(m).encode() for m in messages]
    _decodes_or_raises_protocol_error(b"\n".join(lines) + b"\n" + tail, chunk)


@_FUZZ
@given(st.data(), st.integers(1, 97))
def test_a_valid_stream_with_bytes_overwritten_decodes_or_raises_protocol_error(data, chunk):
    stream = bytearray(_valid_stream())
    for _ in range(data.draw(st.integers(1, 4))):
        stream[data.draw(st.integers(0, len(stream) - 1))] = data.draw(st.integers(0, 255))
    _decodes_or_raises_protocol_error(bytes(stream), chunk)


@_FUZZ
@given(st.data(), st.integers(1, 97))
def test_a_valid_stream_cut_anywhere_with_junk_after_decodes_or_raises_protocol_error(data, chunk):
    stream = _valid_stream()
    cut = data.draw(st.integers(0, len(stream)))
    _decodes_or_raises_protocol_error(stream[:cut] + data.draw(st.binary(max_size=32)), chunk)


@pytest.mark.parametrize("where", ["header", "message"])
def test_deeply_nested_json_is_a_protocol_error(where):
    nested = b"[" * 100_000 + b"\n"
    data = nested if where == "header" else _valid_stream() + nested
    with pytest.raises(protocol.ProtocolError, match="not JSON|expected a JSON message"):
        _decode(data, 4096)


def test_a_feature_type_that_is_not_a_string_is_a_protocol_error_naming_the_feature():
    line = json.dumps({"features": [{"name": "a", "type": ["int64_t"]}], "advice": {"name": "d", "type": "int64_t"}})
    with pytest.raises(protocol.ProtocolError, match="'a' has unknown type"):
        protocol.parse_header(line.encode())


@pytest.mark.integration
@pytest.mark.parametrize(
    "mode, reason",
    [
        ("garble", "protocol error: expected a JSON message line"),
        ("truncate", "protocol error: stream ended inside observation 1"),
        ("bad_dtype", "protocol error: feature 'sroa_savings' has unknown type 'bfloat16'"),
    ],
    ids=["garble", "truncate", "bad_dtype"],
)
def test_a_compiler_breaking_the_protocol_fails_the_compile_at_once(mode, reason, small_modules, tmp_path):
    clang = injection.write_fake_clang(str(tmp_path / "bin"), mode, after=1)
    workdir = str(tmp_path / "work")
    os.makedirs(workdir)
    start = time.monotonic()

    result = env.compile_module(
        small_modules[3],
        policies.parse("heuristic"),
        task=task_lib.InliningForSizeTask(clang=clang),
        timeout_s=60,
        tmp_root=workdir,
    )

    assert result.status == env.FAILED and reason in result.error
    assert time.monotonic() - start < 30
    assert os.listdir(workdir) == []
    injection.assert_no_process_mentions(workdir)
