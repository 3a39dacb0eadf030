"""Expected figures of advanced-margin positions (brackets, volatility floor, funding), computed in
Python from a position's stored fields and the market's reported state, for the engine tests."""

from __future__ import annotations

import model
from model import WAD, ceil_div, floor_div


def brackets(env, market_id: int) -> list[tuple[int, int]]:
    return [(b.cap, b.mmf) for b in env.config.brackets(market_id)]


def funding_owed(size: int, index: int, entry: int) -> int:
    """What a position owes for funding (> 0: pays), rounded against the account."""
    return ceil_div(size * (index - entry), WAD)


def requirements(env, market_id: int, notional: int, vol_mmf: int) -> tuple[int, int]:
    """(maintenance, initial) of a notional: brackets floored at vol_mmf, IM = max(imf N, k MM)."""
    p = env.engine.market(market_id).params
    mm = model.bracket_maintenance(notional, brackets(env, market_id), vol_mmf)
    return mm, max(ceil_div(notional * p.imf, WAD), ceil_div(mm * p.im_multiplier, WAD))


def unit_health(env, account, base: int, market_ids) -> tuple[int, int, int]:
    """(equity, maintenance, initial) of positions standing on `base` at the latest block."""
    equity, mm_sum, im_sum = base, 0, 0
    for mid in market_ids:
        pos = env.engine.position(account, mid)
        price = env.engine.price(mid)
        state = env.engine.market_state(mid)
        notional = ceil_div(abs(pos.size) * price, WAD)
        equity += floor_div(pos.size * price, WAD) - pos.cost - funding_owed(pos.size, state.funding_index, pos.funding_entry)
        mm, im = requirements(env, mid, notional, state.vol_mmf)
        mm_sum += mm
        im_sum += im
    return equity, mm_sum, im_sum


def isolated_health(env, account, market_id: int) -> tuple[int, int, int]:
    return unit_health(env, account, env.engine.position(account, market_id).margin, [market_id])
