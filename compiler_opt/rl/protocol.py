"""Codec for LLVM's MLGO interactive-mode stream (the `-inliner-interactive-channel-base` FIFOs).

Stream written by the compiler to `BASE.out`:
  1. one JSON header line: `{"features": [SPEC, ...], "advice": SPEC}`, where SPEC is
     `{"name": str, "type": "int64_t" | "int32_t" | "float" | ..., "port": int, "shape": [int, ...]}`;
  2. then any number of messages, each one of:
     - `{"context": STR}\\n` (a new function or module is being processed), or
     - `{"observation": N}\\n` followed by the raw little-endian bytes of every feature tensor in header order,
       then one `\\n`. The host answers each observation by writing the advice tensor's raw bytes to `BASE.in`.

Only this module and `env.py` know this layout. Decoding is driven by the header, never by a fixed feature list.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import numpy as np


class ProtocolError(Exception):
    """The compiler's stream does not follow the interactive-mode protocol."""


# LLVM's TensorType names (llvm/Analysis/TensorSpec.h) mapped to little-endian numpy dtypes.
_DTYPES = {
    "float": "<f4",
    "double": "<f8",
    "int8_t": "<i1",
    "uint8_t": "<u1",
    "int16_t": "<i2",
    "uint16_t": "<u2",
    "int32_t": "<i4",
    "uint32_t": "<u4",
    "int64_t": "<i8",
    "uint64_t": "<u8",
}


@dataclasses.dataclass(frozen=True)
class TensorSpec:
    """One tensor of the stream: `dtype` is a numpy dtype string, `shape` a tuple of dimensions."""

    name: str
    dtype: str
    shape: tuple[int, ...]

    @property
    def num_elements(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.num_elements * np.dtype(self.dtype).itemsize

    @classmethod
    def from_json(cls, spec: object) -> TensorSpec:
        if not isinstance(spec, dict) or "name" not in spec or "type" not in spec:
            raise ProtocolError(f"tensor spec must be an object with 'name' and 'type', got {spec!r}")
        type_name = spec["type"]
        if not isinstance(type_name, str) or type_name not in _DTYPES:
            raise ProtocolError(f"feature {spec['name']!r} has unknown type {type_name!r}; known: {sorted(_DTYPES)}")
        shape = spec.get("shape", [1])
        if not isinstance(shape, list) or not all(isinstance(d, int) and d > 0 for d in shape):
            raise ProtocolError(f"feature {spec['name']!r} has invalid shape {shape!r}")
        return cls(name=str(spec["name"]), dtype=_DTYPES[type_name], shape=tuple(shape))


@dataclasses.dataclass(frozen=True)
class Header:
    """The compiler's description of the observation tensors and of the advice it expects."""

    features: tuple[TensorSpec, ...]
    advice: TensorSpec

    @functools.cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @functools.cached_property
    def observation_nbytes(self) -> int:
        return sum(f.nbytes for f in self.features)

    @functools.cached_property
    def offsets(self) -> dict[str, tuple[int, TensorSpec]]:
        """Byte offset of each feature inside one observation's payload."""
        result, offset = {}, 0
        for spec in self.features:
            result[spec.name] = (offset, spec)
            offset += spec.nbytes
        return result

    @functools.cached_property
    def all_scalar_int64(self) -> bool:
        return all(f.dtype == "<i8" and f.num_elements == 1 for f in self.features)

    def encode_advice(self, value: int) -> bytes:
        return np.full(self.advice.shape, value, dtype=self.advice.dtype).tobytes()


def parse_header(line: bytes) -> Header:
    """Parses the first line of the stream. Raises ProtocolError on anything unexpected."""
    try:
        obj = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise ProtocolError(f"header is not JSON ({e}): {line[:200]!r}") from None
    if not isinstance(obj, dict) or "features" not in obj or "advice" not in obj:
        raise ProtocolError(f"header lacks 'features'/'advice': {line[:200]!r}")
    if not isinstance(obj["features"], list) or not obj["features"]:
        raise ProtocolError("header has no features")
    features = tuple(TensorSpec.from_json(f) for f in obj["features"])
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise ProtocolError(f"header repeats feature names: {names}")
    return Header(features=features, advice=TensorSpec.from_json(obj["advice"]))


class Observation:
    """One decision request: `index` (0-based, as sent by the compiler) and the raw feature payload.

    Features are decoded lazily: `obs[name]` is a numpy array of the spec's dtype and shape.
    """

    __slots__ = ("header", "index", "payload", "_vector")

    def __init__(self, header: Header, index: int, payload: bytes):
        self.header = header
        self.index = index
        self.payload = payload
        self._vector = None

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            offset, spec = self.header.offsets[name]
        except KeyError:
            raise KeyError(
                f"the compiler does not send feature {name!r} (it sends {list(self.header.feature_names)})"
            ) from None
        return np.frombuffer(self.payload, dtype=spec.dtype, count=spec.num_elements, offset=offset).reshape(spec.shape)

    def scalar(self, name: str) -> int:
        return int(self[name].flat[0])

    def int64_vector(self) -> np.ndarray:
        """All features as one int64 vector in header order (only when every feature is a scalar int64)."""
        if self._vector is None:
            if not self.header.all_scalar_int64:
                raise ProtocolError("int64_vector() needs every feature to be a scalar int64")
            self._vector = np.frombuffer(self.payload, dtype="<i8")
        return self._vector

    @property
    def features(self) -> dict[str, np.ndarray]:
        return {name: self[name] for name in self.header.feature_names}


@dataclasses.dataclass(frozen=True)
class Context:
    """A `{"context": ...}` message."""

    name: str


class StreamDecoder:
    """Incremental decoder: feed bytes as they arrive, take complete messages out.

    `feed(data)` appends; `next_message()` returns the next complete `Header`, `Context` or `Observation`, or None when
    more bytes are needed. `finish()` raises ProtocolError if the stream ended inside a message.
    """

    # A JSON message line longer than this is garbage, not a slow sender.
    MAX_LINE = 1 << 20

    def __init__(self):
        self._buf = bytearray()
        self._pos = 0
        self.header: Header | None = None
        self._pending_index: int | None = None

    def feed(self, data: bytes) -> None:
        if self._pos > 65536 and self._pos * 2 > len(self._buf):
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    def _take_line(self) -> bytes | None:
        end = self._buf.find(b"\n", self._pos)
        if end < 0:
            if len(self._buf) - self._pos > self.MAX_LINE:
                raise ProtocolError(f"no newline in {self.MAX_LINE} bytes: not a protocol message")
            return None
        line = bytes(self._buf[self._pos : end])
        self._pos = end + 1
        return line

    def next_message(self) -> Header | Context | Observation | None:
        if self._pending_index is not None:
            return self._take_payload()
        line = self._take_line()
        if line is None:
            return None
        if self.header is None:
            self.header = parse_header(line)
            return self.header
        try:
            obj = json.loads(line)
        except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
            raise ProtocolError(f"expected a JSON message line, got {line[:200]!r}") from None
        if isinstance(obj, dict) and "observation" in obj:
            index = obj["observation"]
            if not isinstance(index, int) or isinstance(index, bool):
                raise ProtocolError(f"observation index is not an integer: {line[:200]!r}")
            self._pending_index = index
            return self._take_payload()
        if isinstance(obj, dict) and "context" in obj:
            return Context(name=str(obj["context"]))
        raise ProtocolError(f"unknown message: {line[:200]!r}")

    def _take_payload(self) -> Observation | None:
        n = self.header.observation_nbytes
        if len(self._buf) - self._pos < n + 1:
            return None
        payload = bytes(self._buf[self._pos : self._pos + n])
        if self._buf[self._pos + n] != ord("\n"):
            raise ProtocolError(
                f"observation {self._pending_index}: tensor payload of {n} bytes is not followed by a newline "
                "(feature set or sizes differ from the header)"
            )
        self._pos += n + 1
        obs = Observation(self.header, self._pending_index, payload)
        self._pending_index = None
        return obs

    def finish(self) -> None:
        """Call at end of stream: raises if it stopped inside a message."""
        if self._pending_index is not None:
            have = len(self._buf) - self._pos
            raise ProtocolError(
                f"stream ended inside observation {self._pending_index}: "
                f"{have} of {self.header.observation_nbytes + 1} bytes"
            )
        if self._pos < len(self._buf):
            raise ProtocolError(f"stream ended inside a line: {bytes(self._buf[self._pos :])[:200]!r}")
