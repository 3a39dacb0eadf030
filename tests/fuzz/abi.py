"""Calldata encoders and return-data and log decoders built from a contract's JSON ABI.

Struct outputs come back as named tuples with the contract's own field names, so a field the engine
adds to `position()` or `market()` is there without a change here. Functions are found by name and
number of arguments (Vyper's default arguments compile to overloads). Static return data, the common
case, is decoded word by word; dynamic data goes through eth-abi.
"""

from __future__ import annotations

from collections import namedtuple
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak

_INT_HALF = 1 << 255
_INT_MOD = 1 << 256


class _Type:
    """One ABI type: its canonical string, whether it is static, and how to build its value."""

    def __init__(self, param: dict[str, Any], owner: str):
        t = param["type"]
        self.base = t
        self.element = _Type({**param, "type": t[: t.rindex("[")]}, owner) if t.endswith("]") else None
        self.components: list[_Type] = []
        self.struct: Any = None
        if t.startswith("tuple"):
            self.components = [_Type(c, owner) for c in param["components"]]
            names = [c["name"] or f"f{i}" for i, c in enumerate(param["components"])]
            self.struct = namedtuple(f"{owner}_{param.get('name') or 'tuple'}", names)
            t = "(" + ",".join(c.canonical for c in self.components) + ")" + t[len("tuple") :]
        self.canonical = t
        self.static = self.element is None and t not in ("string", "bytes") and all(c.static for c in self.components)

    def read_words(self, data: bytes, at: int) -> tuple[Any, int]:
        """The value of a static type starting at byte `at`, and the byte after it."""
        if self.struct is not None:
            values = []
            for c in self.components:
                v, at = c.read_words(data, at)
                values.append(v)
            return self.struct(*values), at
        word = int.from_bytes(data[at : at + 32], "big")
        b = self.base
        if b.startswith("uint"):
            v: Any = word
        elif b.startswith("int"):
            v = word - _INT_MOD if word >= _INT_HALF else word
        elif b == "bool":
            v = word == 1
        elif b == "address":
            v = "0x" + data[at + 12 : at + 32].hex()
        else:
            v = data[at : at + 32]
        return v, at + 32

    def shape(self, value: Any) -> Any:
        """An eth-abi decoded value with tuples turned into the struct's named tuples."""
        if self.element is not None:
            return [self.element.shape(v) for v in value]
        if self.struct is not None:
            return self.struct(*(c.shape(v) for c, v in zip(self.components, value)))
        if self.base == "address":
            return value.lower()
        return value


class Function:
    """An external function: calldata out, return data in."""

    def __init__(self, entry: dict[str, Any], owner: str):
        self.name = entry["name"]
        self.inputs = [_Type(p, owner) for p in entry["inputs"]]
        self.outputs = [_Type(p, f"{owner}_{self.name}") for p in entry["outputs"]]
        sig = f"{self.name}({','.join(t.canonical for t in self.inputs)})"
        self.selector = keccak(text=sig)[:4]
        self._in_types = [t.canonical for t in self.inputs]
        self._out_types = [t.canonical for t in self.outputs]
        self._static_out = all(t.static for t in self.outputs)

    def encode(self, *args: Any) -> str:
        return "0x" + (self.selector + abi_encode(self._in_types, list(args))).hex()

    def decode(self, data: bytes) -> Any:
        """One output as its value, several as a tuple, none as None."""
        if self._static_out:
            values, at = [], 0
            for t in self.outputs:
                v, at = t.read_words(data, at)
                values.append(v)
        else:
            values = [t.shape(v) for t, v in zip(self.outputs, abi_decode(self._out_types, data))]
        if not values:
            return None
        return values[0] if len(values) == 1 else tuple(values)


class Event:
    """An event: its topic and a decoder of its logs into a named tuple."""

    def __init__(self, entry: dict[str, Any], owner: str):
        self.name = entry["name"]
        params = entry["inputs"]
        self.types = [_Type(p, f"{owner}_{self.name}") for p in params]
        self.indexed = [bool(p.get("indexed")) for p in params]
        self.struct = namedtuple(self.name, [p["name"] for p in params])
        sig = f"{self.name}({','.join(t.canonical for t in self.types)})"
        self.topic = "0x" + keccak(text=sig).hex()

    def decode(self, log: dict[str, Any]) -> Any:
        topics = iter(log["topics"][1:])
        plain = [t for t, i in zip(self.types, self.indexed) if not i]
        data = abi_decode([t.canonical for t in plain], bytes.fromhex(log["data"][2:])) if plain else ()
        data_it = iter(data)
        values = []
        for t, indexed in zip(self.types, self.indexed):
            if indexed:
                v, _ = t.read_words(bytes.fromhex(next(topics)[2:]), 0)
                values.append(v)
            else:
                values.append(t.shape(next(data_it)))
        return self.struct(*values)


class Abi:
    """Every function and event of one contract's JSON ABI."""

    def __init__(self, abi: list[dict[str, Any]], owner: str):
        self.functions: dict[tuple[str, int], Function] = {}
        self.events: dict[str, Event] = {}
        for entry in abi:
            if entry.get("type") == "function":
                f = Function(entry, owner)
                self.functions[(f.name, len(f.inputs))] = f
            elif entry.get("type") == "event":
                e = Event(entry, owner)
                self.events[e.topic] = e

    def fn(self, name: str, n_args: int) -> Function:
        try:
            return self.functions[(name, n_args)]
        except KeyError:
            raise AttributeError(f"no function {name} with {n_args} arguments in the ABI") from None

    def decode_log(self, log: dict[str, Any]) -> Any | None:
        """The decoded event of a log, or None when the ABI does not declare it."""
        ev = self.events.get(log["topics"][0]) if log["topics"] else None
        return ev.decode(log) if ev else None
