"""Maintenance brackets in the engine (DESIGN 3): a position across a bracket edge needs exactly the
piecewise-linear requirement of RiskConfig.brackets, continuous at the edge and never less for a
larger position."""

import adv_model
import model
from helpers import ETH, ROOT, WAD, load_config
from model import ceil_div


def test_brackets_view_is_the_configuration(adv):
    cfg = load_config(ROOT / "config" / "local.yaml").model_dump(mode="python")
    want = [(b["cap"], b["mmf"]) for b in cfg["markets"][ETH]["brackets"]]
    got = adv.config.brackets(ETH)
    assert len(got) == len(want) == 3
    assert got[-1].cap == 2**256 - 1
    for b, (cap, mmf) in zip(got[:-1], want[:-1]):
        assert b.cap == int(cap * WAD) and b.mmf == int(mmf * WAD)
    assert got[-1].mmf == int(want[-1][1] * WAD)


def formula(notional, brackets):
    """sum over brackets of (notional inside) * mmf, rounded up once; written out here apart from
    model.bracket_maintenance."""
    total, lower = 0, 0
    for cap, mmf in brackets:
        if notional <= lower:
            break
        total += (min(notional, cap) - lower) * mmf
        lower = cap
    return ceil_div(total, WAD)


def test_requirement_across_edges__exact_continuous_monotone(adv, trader, trader2):
    env = adv
    brackets = adv_model.brackets(env, ETH)
    price = env.engine.price(ETH)
    edges = [cap for cap, _ in brackets[:-1]]  # 250,000 and 1,000,000 USD
    env.fund(trader2, 1_000_000)
    env.trade(trader2, ETH, -300)  # the other side, so the pool's exposure stays small
    env.fund(trader, 400_000)
    env.trade_isolated(trader, ETH, 50, 300_000)
    sizes = []
    for edge in edges:
        s = edge * WAD // price  # notional = ceil(s * price / WAD): edge - step, edge, edge + step
        assert ceil_div(s * price, WAD) == edge
        sizes += [s - 1, s, s + 1]
    sizes += [sizes[-1] + 50 * WAD]
    size, seen = 50 * WAD, []
    for s in sizes:
        env.engine.trade_isolated(ETH, s - size, 2**256 - 1, 0, sender=trader)
        size = s
        assert env.engine.market_state(ETH).vol_mmf == 0  # the price never moved
        h = env.engine.isolated_health(trader, ETH)
        notional = ceil_div(s * price, WAD)
        assert h.maintenance_req == formula(notional, brackets) == model.bracket_maintenance(notional, brackets)
        seen.append((notional, h.maintenance_req))
    step = price // WAD
    for i, edge in enumerate(edges):
        (n0, m0), (n1, m1), (n2, m2) = seen[3 * i:3 * i + 3]
        assert (n0, n1, n2) == (edge - step, edge, edge + step)
        lo, hi = brackets[i][1], brackets[i + 1][1]
        # no jump: below the edge each wei costs the lower fraction, above it the higher one
        assert m1 - m0 in (ceil_div(step * lo, WAD) - 1, ceil_div(step * lo, WAD))
        assert m2 - m1 in (ceil_div(step * hi, WAD) - 1, ceil_div(step * hi, WAD))
    reqs = [m for _, m in seen]
    assert reqs == sorted(reqs) and len(set(reqs)) == len(reqs)
