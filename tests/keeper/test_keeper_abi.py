"""The keeper's minimal engine ABI: checked against the compiled contract, fast decoders checked
against eth-abi."""

from __future__ import annotations

import random

import pytest
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import keccak, to_checksum_address

from keeper.abi import (
    ENGINE_ABI,
    EVENTS,
    FUNCTIONS,
    decode_address_array,
    decode_healths,
    decode_revert_reason,
    decode_word_int,
    fn,
)

HEALTH = "(int256,uint256,uint256,bool)"


def _canonical(param: dict) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        inner = ",".join(_canonical(c) for c in param["components"])
        return f"({inner}){t[len('tuple'):]}"
    return t


def test_functions_and_events__match_the_compiled_margin_engine(project) -> None:
    # the engine's, plus what the keeper reads from its RiskConfig (brackets, market events)
    compiled = [
        item.model_dump(mode="json", by_alias=True)
        for c in (project.MarginEngine, project.RiskConfig)
        for item in c.contract_type.abi
    ]
    functions = {
        (i["name"], tuple(_canonical(p) for p in i["inputs"])): tuple(_canonical(p) for p in i["outputs"])
        for i in compiled
        if i["type"] == "function"
    }
    for f in FUNCTIONS.values():
        key = (f.name, f.inputs)
        assert key in functions, f"{f.signature} is not an engine function"
        assert functions[key] == f.outputs, f"{f.name} returns {functions[key]}, declared {f.outputs}"
    events = {
        i["name"]: [(_canonical(p), p["indexed"]) for p in i["inputs"]] for i in compiled if i["type"] == "event"
    }
    for e in EVENTS.values():
        assert events[e.name] == [(i.type, i.indexed) for i in e.inputs], e.name


def test_json_abi__has_every_declared_function_and_event() -> None:
    names = {(i["type"], i["name"]) for i in ENGINE_ABI}
    assert {("function", n) for n in FUNCTIONS} | {("event", n) for n in EVENTS} == names


def test_encode__selector_and_arguments() -> None:
    data = fn("liquidatable_accounts").encode(5, 1000)
    assert data[:10] == "0x" + keccak(text="liquidatable_accounts(uint256,uint256)")[:4].hex()
    assert abi_decode(["uint256", "uint256"], bytes.fromhex(data[10:])) == (5, 1000)
    with pytest.raises(TypeError):
        fn("price").encode()


def test_decode_healths__same_as_eth_abi() -> None:
    rng = random.Random(3)
    items = [
        (rng.randrange(-(2**200), 2**200), rng.randrange(2**200), rng.randrange(2**200), rng.random() < 0.5)
        for _ in range(300)
    ]
    data = abi_encode([HEALTH + "[]"], [items])
    fast = decode_healths(data)
    assert [(h.equity, h.initial_req, h.maintenance_req, h.liquidatable) for h in fast] == list(
        abi_decode([HEALTH + "[]"], data)[0]
    )
    assert decode_healths(abi_encode([HEALTH + "[]"], [[]])) == []


def test_decode_address_array__checksummed() -> None:
    rng = random.Random(4)
    addresses = [to_checksum_address(rng.getrandbits(160).to_bytes(20, "big")) for _ in range(50)]
    data = "0x" + abi_encode(["address[]"], [addresses]).hex()
    assert decode_address_array(data) == addresses


def test_decoders__refuse_truncated_data() -> None:
    data = abi_encode([HEALTH + "[]"], [[(1, 2, 3, True)]])
    with pytest.raises(ValueError):
        decode_healths(data[:-32])


def test_decode_word_int__negative() -> None:
    assert decode_word_int(abi_encode(["int256"], [-5])) == -5


def test_revert_reason__from_error_string() -> None:
    data = "0x08c379a0" + abi_encode(["string"], ["engine: not liquidatable"]).hex()
    assert decode_revert_reason(data) == "engine: not liquidatable"
    assert decode_revert_reason("0x") is None and decode_revert_reason("0x12345678") is None


def test_event_decode__indexed_and_data_fields() -> None:
    ev = EVENTS["Liquidation"]
    account, liquidator = "0x" + "ab" * 20, "0x" + "cd" * 20
    log = {
        "topics": [ev.topic, "0x" + "00" * 12 + "ab" * 20, "0x" + "00" * 12 + "cd" * 20],
        "data": "0x" + abi_encode(["uint256"] * 5 + ["bool"], [10**17, 5, 6, 7, 8, True]).hex(),
    }
    d = ev.decode(log)
    assert d["account"] == to_checksum_address(account) and d["liquidator"] == to_checksum_address(liquidator)
    assert d["reward"] == 8 and d["full"] is True
