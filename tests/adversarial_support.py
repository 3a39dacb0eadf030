"""Helpers shared by the adversarial test files (tests/test_adversarial_*.py): derived deployment
configs, the message Ape gives a revert without a reason, and a ledger to prove that a refused
call changed nothing."""

from __future__ import annotations

from typing import Any, Callable

from ape.exceptions import TransactionError

from _deploy import DeployConfig
from helpers import base_config

# A revert without a reason string: Vyper's overflow and bounds checks and its reentrancy lock.
BARE = TransactionError.DEFAULT_MESSAGE
MAX_UINT = 2**256 - 1
ZERO = "0x" + "00" * 20


def derive_config(edit: Callable[[dict], Any]) -> DeployConfig:
    """config/local.yaml (through base_config) after `edit` has changed its raw dict in place."""
    raw = base_config().model_dump(mode="python")
    edit(raw)
    return DeployConfig.model_validate(raw)


def ledger(env, *who) -> dict:
    """Everything a refused call could have moved: each address's tokens, collateral, pool shares
    and position mask, and the engine's and pool's totals."""
    e, p, t = env.engine, env.pool, env.token
    out: dict = {
        "insurance": e.insurance_fund(),
        "pool_owed": e.pool_owed(),
        "engine_tokens": t.balanceOf(e.address),
        "pool_assets": p.totalAssets(),
        "pool_supply": p.totalSupply(),
        "n_accounts": e.n_accounts(),
    }
    for w in who:
        a = getattr(w, "address", w)
        out[a] = (t.balanceOf(a), e.collateral(a), p.balanceOf(a), e.position_mask(a))
    return out
