"""Specification of the interactive-mode stream decoder."""

import json
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from compiler_opt.rl import protocol

# The header clang-22 22.1.8 sends in interactive mode (recorded once from the real compiler).
_HEADER_PATH = os.path.join(os.path.dirname(__file__), "testdata", "clang22_interactive_header.json")


def _header_line(features=(("a", "int64_t", [1]), ("b", "int64_t", [1]))) -> bytes:
    obj = {
        "features": [{"name": n, "type": t, "port": 0, "shape": s} for n, t, s in features],
        "advice": {"name": "inlining_decision", "type": "int64_t", "port": 0, "shape": [1]},
    }
    return json.dumps(obj).encode() + b"\n"


def _observation(index: int, *values: int) -> bytes:
    return json.dumps({"observation": index}).encode() + b"\n" + np.array(values, "<i8").tobytes() + b"\n"


def _decode_all(data: bytes, chunk: int = 7) -> list:
    decoder = protocol.StreamDecoder()
    messages = []
    for i in range(0, len(data), chunk):
        decoder.feed(data[i : i + chunk])
        while (msg := decoder.next_message()) is not None:
            messages.append(msg)
    decoder.finish()
    return messages


def test_decodes_header_context_and_observations_split_at_any_byte():
    data = _header_line() + b'{"context": "f"}\n' + _observation(0, 5, -1) + _observation(1, 7, 1)
    for chunk in (1, 3, 7, len(data)):
        header, context, first, second = _decode_all(data, chunk)
        assert header.feature_names == ("a", "b")
        assert context == protocol.Context("f")
        assert (first.index, first.scalar("a"), first.scalar("b")) == (0, 5, -1)
        assert second.int64_vector().tolist() == [7, 1]


def test_decodes_mixed_dtypes_and_shapes_by_the_header():
    header = _header_line((("x", "float", [2]), ("y", "int32_t", [1])))
    payload = np.array([1.5, -2.0], "<f4").tobytes() + np.array([9], "<i4").tobytes()
    _, obs = _decode_all(header + b'{"observation": 0}\n' + payload + b"\n")
    assert obs["x"].tolist() == [1.5, -2.0]
    assert obs["y"].dtype == np.int32 and obs.scalar("y") == 9


def test_reads_the_real_clang22_header():
    with open(_HEADER_PATH, "rb") as f:
        header = protocol.parse_header(json.dumps(json.load(f)).encode())
    assert len(header.features) == 39
    assert header.feature_names[-1] == "inlining_default"
    assert header.all_scalar_int64 and header.observation_nbytes == 39 * 8
    assert header.encode_advice(1) == np.array([1], "<i8").tobytes()


def test_unknown_feature_asks_for_a_sent_name():
    _, obs = _decode_all(_header_line() + _observation(0, 1, 2))
    with pytest.raises(KeyError, match="does not send feature 'zzz'"):
        obs["zzz"]


@pytest.mark.parametrize(
    "line, message",
    [
        (b"not json\n", "header is not JSON"),
        (b'{"features": []}\n', "lacks"),
        (b'{"features": [], "advice": {"name": "d", "type": "int64_t"}}\n', "no features"),
    ],
)
def test_bad_header_is_an_error(line, message):
    with pytest.raises(protocol.ProtocolError, match=message):
        _decode_all(line)


def test_unknown_dtype_is_an_error_naming_the_feature():
    with pytest.raises(protocol.ProtocolError, match="'a' has unknown type 'bfloat16'"):
        _decode_all(_header_line((("a", "bfloat16", [1]),)))


def test_garbled_message_line_is_an_error():
    with pytest.raises(protocol.ProtocolError, match="expected a JSON message"):
        _decode_all(_header_line() + b"garbage\n")


def test_payload_of_the_wrong_size_is_an_error():
    data = _header_line() + b'{"observation": 0}\n' + np.array([1, 2, 3], "<i8").tobytes() + b"\n"
    with pytest.raises(protocol.ProtocolError, match="not followed by a newline"):
        _decode_all(data)


def test_stream_ending_inside_an_observation_is_an_error():
    data = _header_line() + _observation(0, 1, 2)
    with pytest.raises(protocol.ProtocolError, match="ended inside observation 0"):
        _decode_all(data[:-5])


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(min_value=1, max_value=64))
def test_random_bytes_after_a_header_decode_or_raise_protocol_error(junk, chunk):
    try:
        _decode_all(_header_line() + junk, chunk)
    except protocol.ProtocolError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=10_000))
def test_any_truncation_of_a_valid_stream_decodes_or_raises_protocol_error(cut):
    data = _header_line() + _observation(0, 1, 2) + b'{"context": "g"}\n' + _observation(1, 3, 4)
    try:
        messages = _decode_all(data[: cut % (len(data) + 1)])
    except protocol.ProtocolError:
        return
    assert all(isinstance(m, protocol.Header | protocol.Context | protocol.Observation) for m in messages)
