"""Fixtures for the keeper's pure unit tests (no chain needed)."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from eth_utils import to_checksum_address


@pytest.fixture(autouse=True)
def clean_ballast_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts without BALLAST_* variables from the outer environment."""
    for name in list(os.environ):
        if name.upper().startswith("BALLAST_"):
            monkeypatch.delenv(name)


@pytest.fixture
def make_addresses() -> Callable[[int, int], list[str]]:
    """``make_addresses(n, seed)``: n distinct checksummed addresses, reproducible by seed."""

    def make(n: int, seed: int = 0) -> list[str]:
        rng = random.Random(seed)
        found: dict[str, None] = {}
        while len(found) < n:
            found[to_checksum_address(rng.getrandbits(160).to_bytes(20, "big"))] = None
        return list(found)

    return make


ENGINE = "0x" + "11" * 20
POOL = "0x" + "22" * 20
COLLATERAL = "0x" + "33" * 20
ORACLE = "0x" + "44" * 20


@pytest.fixture
def deployment_file(tmp_path: Path) -> Callable[..., Path]:
    """``deployment_file(**overrides)``: write a valid deployment JSON (with overrides)."""

    def write(**overrides: object) -> Path:
        data: dict[str, object] = {
            "network": "ethereum:local:foundry",
            "chain_id": 31337,
            "deploy_block": 7,
            "contracts": {
                "engine": ENGINE,
                "pool": POOL,
                "collateral": COLLATERAL,
                "oracles": {"ETH-USD": ORACLE},
            },
        }
        data.update(overrides)
        path = tmp_path / "deployment.json"
        path.write_text(json.dumps(data))
        return path

    return write
