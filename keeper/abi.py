"""The minimal ABI of the MarginEngine that the keeper uses, with fast encoders and decoders.

The keeper does not read Ape's build artifacts at run time (it must run outside the project
directory), so the functions and events it calls are declared here, by their Solidity ABI types.
A test checks every declaration against the compiled contract, so this file cannot drift from
``contracts/MarginEngine.vy`` unnoticed.

Encoding and decoding use eth-abi. The hot paths (``healths``, address arrays and single words)
have hand-written decoders, several times faster than eth-abi on thousands of entries; tests
compare them with eth-abi.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

__all__ = [
    "Function",
    "Event",
    "HealthTuple",
    "FUNCTIONS",
    "EVENTS",
    "ENGINE_ABI",
    "fn",
    "event",
    "decode_word_uint",
    "decode_word_int",
    "decode_healths",
    "decode_address_array",
    "decode_revert_reason",
    "ERROR_SELECTOR",
]

_MARKET_PARAMS = "(" + ",".join(["uint256"] * 12) + ")"
_HEALTH = "(int256,uint256,uint256,bool)"


def _split_types(types: str) -> tuple[str, ...]:
    """Split a comma-separated list of ABI types at the top level (tuples stay whole)."""
    out: list[str] = []
    depth = 0
    current = ""
    for ch in types:
        if ch == "," and depth == 0:
            out.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    if current:
        out.append(current)
    return tuple(out)


@dataclass(frozen=True)
class Function:
    """An external function: name, ABI input types and output types."""

    name: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    mutates: bool = False

    @property
    def signature(self) -> str:
        """Canonical signature, for example ``liquidate_many(address[])``."""
        return f"{self.name}({','.join(self.inputs)})"

    @cached_property
    def selector(self) -> bytes:
        """The 4-byte selector."""
        return keccak(text=self.signature)[:4]

    def encode(self, *args: Any) -> str:
        """Calldata as a ``0x`` hex string."""
        if len(args) != len(self.inputs):
            raise TypeError(f"{self.name} takes {len(self.inputs)} arguments, got {len(args)}")
        body = abi_encode(list(self.inputs), list(args)) if self.inputs else b""
        return "0x" + (self.selector + body).hex()

    def decode(self, data: bytes | str) -> tuple[Any, ...]:
        """Decode the return data into a tuple of outputs."""
        return abi_decode(list(self.outputs), _bytes(data))

    def decode_one(self, data: bytes | str) -> Any:
        """Decode a function with exactly one output."""
        return self.decode(data)[0]


@dataclass(frozen=True)
class EventInput:
    name: str
    type: str
    indexed: bool


@dataclass(frozen=True)
class Event:
    """An event: name and inputs (name, ABI type, indexed)."""

    name: str
    inputs: tuple[EventInput, ...]

    @property
    def signature(self) -> str:
        return f"{self.name}({','.join(i.type for i in self.inputs)})"

    @cached_property
    def topic(self) -> str:
        """``topic0`` as a ``0x`` hex string."""
        return "0x" + keccak(text=self.signature).hex()

    def decode(self, log: dict[str, Any]) -> dict[str, Any]:
        """Decode a JSON-RPC log object into ``{input name: value}`` (addresses checksummed)."""
        topics = log["topics"][1:]
        indexed = [i for i in self.inputs if i.indexed]
        plain = [i for i in self.inputs if not i.indexed]
        if len(topics) != len(indexed):
            raise ValueError(f"{self.name}: expected {len(indexed)} indexed topics, got {len(topics)}")
        out: dict[str, Any] = {}
        for inp, topic in zip(indexed, topics):
            out[inp.name] = abi_decode([inp.type], _bytes(topic))[0]
        if plain:
            values = abi_decode([i.type for i in plain], _bytes(log["data"]))
            out.update(zip((i.name for i in plain), values))
        return {k: (to_checksum_address(v) if _is_address(self, k) else v) for k, v in out.items()}


def _is_address(ev: Event, name: str) -> bool:
    return any(i.name == name and i.type == "address" for i in ev.inputs)


def _bytes(data: bytes | str) -> bytes:
    if isinstance(data, bytes):
        return data
    text = data[2:] if data.startswith(("0x", "0X")) else data
    return bytes.fromhex(text)


def _f(name: str, inputs: str, outputs: str, mutates: bool = False) -> Function:
    return Function(name, _split_types(inputs), _split_types(outputs), mutates)


def _e(name: str, *inputs: tuple[str, str, bool]) -> Event:
    return Event(name, tuple(EventInput(n, t, i) for n, t, i in inputs))


FUNCTIONS: dict[str, Function] = {
    f.name: f
    for f in (
        # views
        _f("n_accounts", "", "uint256"),
        _f("account_at", "uint256", "address"),
        _f("health", "address", _HEALTH),
        _f("healths", "address[]", _HEALTH + "[]"),
        _f("liquidatable_accounts", "uint256,uint256", "address[]"),
        _f("position", "address,uint256", "(int256,int256,int256,int256,bool)"),
        _f("position_mask", "address", "uint256"),
        _f("collateral", "address", "int256"),
        _f("n_markets", "", "uint256"),
        _f("market", "uint256", f"(address,{_MARKET_PARAMS},uint256,uint256)"),
        _f("price", "uint256", "uint256"),
        _f("config", "", "address"),
        _f("market_state", "uint256", "(int256,int256,uint256,uint256)"),
        _f("brackets", "uint256", "(uint256,uint256)[]"),
        _f("liquidation_params", "", "(uint256,uint256,uint256,uint256)"),
        _f("insurance_fund", "", "uint256"),
        _f("collateral_token", "", "address"),
        _f("scale", "", "uint256"),
        # actions
        _f("liquidate", "address", "uint256", mutates=True),
        _f("liquidate_many", "address[]", "uint256,uint256", mutates=True),
    )
}

EVENTS: dict[str, Event] = {
    e.name: e
    for e in (
        _e("AccountListed", ("account", "address", True), ("listed", "bool", False)),
        _e(
            "Trade",
            ("account", "address", True),
            ("market_id", "uint256", True),
            ("size_delta", "int256", False),
            ("fill_price", "uint256", False),
            ("fee", "uint256", False),
            ("realized_pnl", "int256", False),
            ("funding", "int256", False),
            ("new_size", "int256", False),
            ("isolated", "bool", False),
        ),
        _e(
            "Liquidation",
            ("account", "address", True),
            ("liquidator", "address", True),
            ("fraction", "uint256", False),
            ("closed_notional", "uint256", False),
            ("penalty", "uint256", False),
            ("penalty_paid", "uint256", False),
            ("reward", "uint256", False),
            ("full", "bool", False),
            ("isolated_market", "uint256", False),
        ),
        _e(
            "PositionLiquidated",
            ("account", "address", True),
            ("market_id", "uint256", True),
            ("size_closed", "int256", False),
            ("price", "uint256", False),
            ("realized_pnl", "int256", False),
            ("funding", "int256", False),
        ),
        _e("Deposit", ("account", "address", True), ("sender", "address", True), ("amount", "uint256", False)),
        _e("Withdraw", ("account", "address", True), ("receiver", "address", True), ("amount", "uint256", False)),
        _e("MarketAdded", ("market_id", "uint256", True), ("oracle", "address", False)),
        _e("MarketParamsSet", ("market_id", "uint256", True), ("params", _MARKET_PARAMS, False)),
    )
}


def fn(name: str) -> Function:
    """The declared function ``name``."""
    return FUNCTIONS[name]


def event(name: str) -> Event:
    """The declared event ``name``."""
    return EVENTS[name]


def _abi_param(type_: str, name: str = "") -> dict[str, Any]:
    """A JSON-ABI parameter; tuple components get positional names."""
    base, suffix = type_, ""
    while base.endswith("[]"):
        base, suffix = base[:-2], suffix + "[]"
    if base.startswith("("):
        comps = _split_types(base[1:-1])
        return {
            "name": name,
            "type": "tuple" + suffix,
            "components": [_abi_param(t, f"f{i}") for i, t in enumerate(comps)],
        }
    return {"name": name, "type": type_}


def _json_abi() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in FUNCTIONS.values():
        out.append(
            {
                "type": "function",
                "name": f.name,
                "stateMutability": "nonpayable" if f.mutates else "view",
                "inputs": [_abi_param(t, f"a{i}") for i, t in enumerate(f.inputs)],
                "outputs": [_abi_param(t) for t in f.outputs],
            }
        )
    for e in EVENTS.values():
        out.append(
            {
                "type": "event",
                "name": e.name,
                "anonymous": False,
                "inputs": [dict(_abi_param(i.type, i.name), indexed=i.indexed) for i in e.inputs],
            }
        )
    return out


ENGINE_ABI: list[dict[str, Any]] = _json_abi()
"""The same declarations as a JSON ABI (for tools that want one, e.g. ``web3.eth.contract``)."""


# -- fast decoders ------------------------------------------------------------------------------

_INT_OFFSET = 1 << 256
_INT_MAX = (1 << 255) - 1


def decode_word_uint(data: bytes, index: int = 0) -> int:
    """The ``index``-th 32-byte word as an unsigned integer.

    :raises ValueError: if ``data`` ends before that word (a cut or empty answer is not zero).
    """
    if len(data) < 32 * index + 32:
        raise ValueError(f"return data of {len(data)} bytes has no word {index}")
    return int.from_bytes(data[32 * index : 32 * index + 32], "big")


def decode_word_int(data: bytes, index: int = 0) -> int:
    """The ``index``-th 32-byte word as a two's complement signed integer."""
    v = decode_word_uint(data, index)
    return v - _INT_OFFSET if v > _INT_MAX else v


@dataclass(frozen=True, slots=True)
class HealthTuple:
    """``IMarginEngine.Health``: equity (WAD, signed), requirements (WAD), liquidatable."""

    equity: int
    initial_req: int
    maintenance_req: int
    liquidatable: bool


def _array_bounds(data: bytes, words_per_item: int) -> tuple[int, int]:
    if len(data) < 64:
        raise ValueError("return data too short for a dynamic array")
    offset = int.from_bytes(data[0:32], "big")
    length = int.from_bytes(data[offset : offset + 32], "big")
    start = offset + 32
    if len(data) < start + 32 * words_per_item * length:
        raise ValueError("return data shorter than its array length")
    return start, length


def decode_healths(data: bytes | str) -> list[HealthTuple]:
    """Decode ``healths`` return data (a dynamic array of static 4-word tuples)."""
    raw = _bytes(data)
    start, length = _array_bounds(raw, 4)
    out = []
    for i in range(length):
        base = start + 128 * i
        eq = int.from_bytes(raw[base : base + 32], "big")
        if eq > _INT_MAX:
            eq -= _INT_OFFSET
        out.append(
            HealthTuple(
                equity=eq,
                initial_req=int.from_bytes(raw[base + 32 : base + 64], "big"),
                maintenance_req=int.from_bytes(raw[base + 64 : base + 96], "big"),
                liquidatable=raw[base + 127] == 1,
            )
        )
    return out


def decode_address_array(data: bytes | str) -> list[str]:
    """Decode an ``address[]`` return value into checksummed addresses."""
    raw = _bytes(data)
    start, length = _array_bounds(raw, 1)
    return [
        to_checksum_address(raw[start + 32 * i + 12 : start + 32 * i + 32]) for i in range(length)
    ]


ERROR_SELECTOR = keccak(text="Error(string)")[:4]


def decode_revert_reason(data: bytes | str | None) -> str | None:
    """The reason string of an ``Error(string)`` revert, or ``None``."""
    if not data:
        return None
    try:
        raw = _bytes(data)
    except ValueError:
        return None
    if raw[:4] != ERROR_SELECTOR:
        return None
    try:
        return str(abi_decode(["string"], raw[4:])[0])
    except Exception:  # noqa: BLE001 - malformed revert data is just "no reason"
        return None


def encode_address_list(accounts: Sequence[str]) -> str:
    """Calldata of ``liquidate_many(accounts)``."""
    return FUNCTIONS["liquidate_many"].encode(list(accounts))
