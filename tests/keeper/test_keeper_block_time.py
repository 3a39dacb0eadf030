"""``--block-time``: a known block time is used as given instead of learned from timestamps (a
local chain that mines on demand, with timestamps far apart, must not make the keeper sleep)."""

from __future__ import annotations

from pathlib import Path

import pytest

from keeper.engine import Head
from keeper.runner import Keeper
from keeper.settings import SettingsError, load_deployment, load_settings


def _head(number: int, timestamp: int) -> Head:
    return Head(number=number, hash="0x", timestamp=timestamp, base_fee=0, gas_limit=30_000_000)


def _keeper(deployment_file, **flags: str) -> Keeper:
    path: Path = deployment_file()
    settings = load_settings({"deployment": str(path), "metrics_port": "0", **flags})
    return Keeper(settings, load_deployment(path))


def test_learned_by_default__blocks_an_hour_apart_raise_it(deployment_file) -> None:
    k = _keeper(deployment_file)
    for n in range(5):
        k._note_head(_head(100 + n, 1_000_000 + 3600 * n))
    assert k.block_time > 600


@pytest.mark.parametrize("given", ["0", "2.5"])
def test_given__kept_whatever_the_timestamps_say(deployment_file, given: str) -> None:
    k = _keeper(deployment_file, block_time=given)
    assert k.block_time == float(given)
    for n in range(5):
        k._note_head(_head(100 + n, 1_000_000 + 3600 * n))
    assert k.block_time == float(given)


def test_negative__refused_naming_the_flag() -> None:
    with pytest.raises(SettingsError, match="--block-time"):
        load_settings({"block_time": "-1"})
