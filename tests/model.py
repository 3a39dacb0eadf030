"""Independent pure-Python integer model of Ballast's margin math.

Written from ``docs/margin-math.md`` only (not from the contract), so that hypothesis tests can
compare the Vyper engine against it wei for wei. Every quantity is a Python ``int``; no floats and
no ``Decimal`` are used anywhere.

Conventions (see the doc):

* ``WAD = 10**18``. USD values, prices and fractions are WAD; sizes are signed base units with 18
  decimals; ``cost`` is the signed cost basis in WAD USD.
* Rounding always goes against the account: requirements, fees, penalties and cost bases round up;
  equity, proceeds and payouts round down.
* ``floor_div`` / ``ceil_div`` take a signed numerator and a positive denominator. Python's ``//``
  already floors for signed ints; ``ceil_div(a, b) = -((-a) // b)``.

Readings chosen where the doc leaves room (each is listed in the report that came with this file
and in the docstring of the function concerned):

* ``liquidate`` treats the account as fully closed (``full=True``, ``fraction=WAD``, bad debt
  settled) whenever no position is left afterwards, including when the per-position dust rule
  closed every position of a partial liquidation (matches ``full: bool  # no position left`` of the
  ``Liquidation`` event in ``IMarginEngine.vyi``).
* ``liquidate`` requires ``liq_target >= WAD``: below that, ``num`` can be ``<= 0``, which would
  give ``f <= 0`` and a liquidation that closes nothing yet pays a minimum keeper reward from the
  insurance fund.
* A reward of ``R`` WAD debits the insurance fund by the whole ``R`` (the pool covers a negative
  fund), and the sub-token remainder ``R - (R // scale) * scale`` is credited back to the fund at
  the end (doc, "Token edges"), so a shortfall is measured against ``R``, not the tokens paid.
* ``fill_price`` rejects ``delta == 0`` (the rounding side is undefined for a zero trade).
* ``liquidate`` applies the doc's per-position dust rule by default; ``dust="account"`` gives the
  protocol-safe alternative (see the function's docstring for why the doc's rule can miss the
  liquidation target).
* ``liquidate`` caps the penalty by the equity left, as the doc says, by default
  (``penalty_from="equity"``); ``penalty_from="collateral"`` keeps the earlier reading, which
  forgives the penalty of an account whose cash is short but whose remaining positions are in gain.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WAD: int = 10**18


# --------------------------------------------------------------------------------------------
# Rounding helpers
# --------------------------------------------------------------------------------------------


def floor_div(a: int, b: int) -> int:
    """Signed division rounded toward minus infinity; ``b`` must be positive."""
    if b <= 0:
        raise ValueError("floor_div: denominator must be positive")
    return a // b


def ceil_div(a: int, b: int) -> int:
    """Signed division rounded toward plus infinity; ``b`` must be positive."""
    if b <= 0:
        raise ValueError("ceil_div: denominator must be positive")
    return -((-a) // b)


LIQ_SLACK = 10  # wei of target slack per position (doc, Liquidation)


def _sign(x: int) -> int:
    return (x > 0) - (x < 0)


# --------------------------------------------------------------------------------------------
# Parameters and state
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MarketParams:
    """Risk parameters of one market (fractions in WAD, ``min_position_notional`` in WAD USD,
    ``skew_scale`` in base units)."""

    mmf: int
    imf: int
    im_multiplier: int
    liq_penalty: int
    taker_fee: int
    skew_scale: int
    min_position_notional: int


@dataclass(frozen=True)
class LiqParams:
    """Liquidation parameters (``liq_target`` and ``keeper_share`` in WAD; rewards in WAD USD)."""

    liq_target: int
    keeper_share: int
    min_keeper_reward: int
    max_keeper_reward: int


@dataclass
class Pos:
    """One cross position of an account: signed ``size``, signed ``cost`` basis, the market's
    current validated oracle ``price`` and the market's parameters."""

    size: int
    cost: int
    price: int
    market: MarketParams


@dataclass(frozen=True)
class Terms:
    """Per-position quantities: notional ``N``, value ``V``, unrealized PnL ``U``, maintenance
    ``MM``, initial ``IM`` and penalty base ``L`` (all WAD USD)."""

    N: int
    V: int
    U: int
    MM: int
    IM: int
    L: int


@dataclass(frozen=True)
class Health:
    """Account health as the engine's ``health(account)`` view reports it."""

    equity: int
    initial_req: int
    maintenance_req: int
    liquidatable: bool


class NotLiquidatable(Exception):
    """The account has no position or its equity is not below its maintenance requirement."""


# --------------------------------------------------------------------------------------------
# Per position and per account
# --------------------------------------------------------------------------------------------


def _check_pos(pos: Pos) -> None:
    if pos.price <= 0:
        raise ValueError("price must be positive (validated oracle price)")
    if pos.size == 0 and pos.cost != 0:
        raise ValueError("a zero-size position must have a zero cost basis")


def position_terms(pos: Pos) -> Terms:
    """``N, V, U, MM, IM, L`` of one position at its oracle price, rounded as the doc states:

    * ``N = ceil_div(|size| * P, WAD)``; ``V = floor_div(size * P, WAD)``; ``U = V - cost``
    * ``MM = ceil_div(N * mmf, WAD)``
    * ``IM = max(ceil_div(N * imf, WAD), ceil_div(MM * im_multiplier, WAD))``
    * ``L = ceil_div(N * liq_penalty, WAD)``
    """
    _check_pos(pos)
    m = pos.market
    P = pos.price
    N = ceil_div(abs(pos.size) * P, WAD)
    V = floor_div(pos.size * P, WAD)
    U = V - pos.cost
    MM = ceil_div(N * m.mmf, WAD)
    IM = max(ceil_div(N * m.imf, WAD), ceil_div(MM * m.im_multiplier, WAD))
    L = ceil_div(N * m.liq_penalty, WAD)
    return Terms(N=N, V=V, U=U, MM=MM, IM=IM, L=L)


def account_health(collateral: int, positions: list[Pos]) -> Health:
    """Cross health: ``E = collateral + sum(U)``, ``I = sum(IM)``, ``M = sum(MM)``; liquidatable
    iff some position has ``size != 0`` and ``E < M`` (strictly)."""
    terms = [position_terms(p) for p in positions]
    E = collateral + sum(t.U for t in terms)
    I = sum(t.IM for t in terms)
    M = sum(t.MM for t in terms)
    has_position = any(p.size != 0 for p in positions)
    return Health(equity=E, initial_req=I, maintenance_req=M, liquidatable=has_position and E < M)


def post_trade_ok(collateral: int, positions: list[Pos], *, increases: bool) -> bool:
    """The account-level check after a state change (doc, "Per account (cross)").

    ``increases=True`` (opening or increasing a position, a flip, or a withdrawal): ``E >= I`` and
    ``collateral >= 0``. ``increases=False`` (a pure reduction or close): ``E >= 0``.
    Per-market checks (``min_position_notional``, open-interest caps, acceptable price) are not
    part of this helper.
    """
    h = account_health(collateral, positions)
    if increases:
        return h.equity >= h.initial_req and collateral >= 0
    return h.equity >= 0


# --------------------------------------------------------------------------------------------
# Trading
# --------------------------------------------------------------------------------------------


def fill_price(price: int, skew: int, delta: int, skew_scale: int) -> int:
    """Fill price of a trade of ``delta`` base units when the market's skew is ``skew``.

    ``adj = (skew + (skew + delta)) * P / (2 * skew_scale)``, rounded up for a buy
    (``delta > 0``) and down for a sell, ``fill = P + adj``. Raises ``ValueError`` if
    ``fill <= 0``, if ``delta == 0`` (no side to round against) or if ``skew_scale <= 0``.
    """
    if price <= 0:
        raise ValueError("price must be positive")
    if skew_scale <= 0:
        raise ValueError("skew_scale must be positive")
    if delta == 0:
        raise ValueError("zero trade")
    skew_after = skew + delta
    num = (skew + skew_after) * price
    den = 2 * skew_scale
    adj = ceil_div(num, den) if delta > 0 else floor_div(num, den)
    fill = price + adj
    if fill <= 0:
        raise ValueError("fill price not positive")
    return fill


def trade_fee(delta: int, fill: int, taker_fee: int) -> int:
    """Taker fee: ``T = ceil_div(|delta| * fill, WAD)``, fee ``= ceil_div(T * taker_fee, WAD)``."""
    T = ceil_div(abs(delta) * fill, WAD)
    return ceil_div(T * taker_fee, WAD)


def _reduce(size: int, cost: int, c: int, p: int) -> tuple[int, int, int]:
    """Reduce a position by ``c`` (same sign as ``size``, ``0 < |c| <= |size|``) at price ``p``.

    ``removed = ceil_div(cost * c, size)`` (computed as ``ceil_div(cost * |c|, |size|)``: the
    ratio ``c / size`` is positive), or all of ``cost`` when ``c == size``;
    ``proceeds = floor_div(c * p, WAD)``; returns ``(new_size, new_cost, realized)``.
    """
    assert c != 0 and _sign(c) == _sign(size) and abs(c) <= abs(size)
    if c == size:
        removed = cost
    else:
        removed = ceil_div(cost * abs(c), abs(size))
    proceeds = floor_div(c * p, WAD)
    return size - c, cost - removed, proceeds - removed


def apply_trade(size: int, cost: int, delta: int, fill: int) -> tuple[int, int, int]:
    """Position update at price ``fill``; returns ``(new_size, new_cost, realized)``.

    * increase (same sign or from zero): ``cost += ceil_div(delta * fill, WAD)``, realized 0;
    * partial reduce / full close by ``c = -delta``: see ``_reduce``;
    * flip: close the whole old position at ``fill`` (realized), then open the remainder at the
      same ``fill`` with ``cost = ceil_div(remainder * fill, WAD)``.

    ``delta == 0`` leaves the position unchanged.
    """
    if fill <= 0:
        raise ValueError("fill must be positive")
    if size == 0 and cost != 0:
        raise ValueError("a zero-size position must have a zero cost basis")
    if delta == 0:
        return size, cost, 0
    if size == 0 or _sign(size) == _sign(delta):
        return size + delta, cost + ceil_div(delta * fill, WAD), 0
    c = -delta
    if abs(c) <= abs(size):
        return _reduce(size, cost, c, fill)
    # flip: close all, then open the remainder at the same fill
    _, _, realized = _reduce(size, cost, size, fill)
    rest = size + delta
    return rest, ceil_div(rest * fill, WAD), realized


# --------------------------------------------------------------------------------------------
# Liquidation
# --------------------------------------------------------------------------------------------


@dataclass
class LiqResult:
    """Outcome of ``liquidate``. All amounts WAD USD unless stated.

    ``pool_delta`` is what the pool gains: ``-realized - written_off``. ``written_off`` is the
    total the insurance fund could not cover (reward shortfall plus bad debt it could not pay);
    it is split in ``reward_shortfall`` (``InsuranceShortfall`` event) and
    ``bad_debt_written_off`` (``BadDebt.pool_written_off``).
    """

    full: bool
    fraction: int
    closed: list[int]
    new_sizes: list[int]
    new_costs: list[int]
    realized: int
    closed_notional: int
    penalty: int
    paid: int
    reward: int
    bad_debt: int
    collateral_after: int
    insurance_after: int
    written_off: int
    pool_delta: int
    # details
    realized_each: list[int] = field(default_factory=list)
    notional_each: list[int] = field(default_factory=list)
    penalty_each: list[int] = field(default_factory=list)
    reward_tokens: int = 0
    reward_shortfall: int = 0
    bad_debt_insurance_paid: int = 0
    bad_debt_written_off: int = 0


def liquidate(
    collateral: int,
    positions: list[Pos],
    liq: LiqParams,
    insurance: int,
    *,
    scale: int = 1,
    dust: str = "position",
    penalty_from: str = "equity",
) -> LiqResult:
    """Liquidate a cross account at the oracle prices, following the doc's order.

    1. ``E, M, Lsum``; raise ``NotLiquidatable`` unless some position is open and ``E < M``.
    2. ``tM = ceil_div(t * M, WAD)``, ``num = tM - E + 10 * k`` (k open positions), ``den = tM - Lsum``. Full close when
       ``E <= 0`` or ``den <= 0`` or ``f = ceil_div(num * WAD, den) >= WAD``.
    3. Otherwise ``c = sign(size) * min(ceil_div(|size| * f, WAD), |size|)``, and a position whose
       remainder would have notional ``ceil_div(|rest| * P, WAD) < min_position_notional`` is
       closed in full.
    4. Realized PnL at ``P`` by the trade reduce rule; ``n = ceil_div(|c| * P, WAD)``;
       ``penalty = sum(ceil_div(n * liq_penalty, WAD))``.
    5. ``collateral += realized``; when no position is left (a full close, including one produced
       by the dust rule) and ``collateral < 0``: ``bad_debt = -collateral``, ``collateral = 0``.
    6. ``paid = min(penalty, max(left, 0))`` with ``left`` = collateral plus the unrealized PnL of
       the remaining positions; ``collateral -= paid`` (see ``penalty_from``).
    7. ``reward = min(clamp(floor_div(keeper_share * penalty, WAD), min, max), penalty,
       max(paid, min))``.
    8. Insurance ``+ paid - reward`` (the whole reward; a negative fund is ``reward_shortfall``,
       covered by the pool, and the fund stops at zero), then ``- bad_debt`` (what the fund cannot
       cover is ``bad_debt_written_off`` by the pool), then ``+ reward - (reward // scale) * scale``
       (the sub-token remainder of what the caller is paid in whole tokens).

    ``scale`` is the collateral token's ``10**(18 - decimals)``; the default 1 means a WAD token.

    ``dust="position"`` (default) is the doc's rule: only the position whose remainder would be
    dust is closed in full. That rule can leave the account below ``liq_target * MM'`` (even
    liquidatable) when the dust-closed market has ``liq_penalty > liq_target * mmf``: its extra
    penalty outweighs the requirement it frees. ``dust="account"`` is the other reading of
    DESIGN section 5 ("close fully when the remainder would be under min_position_notional"): any
    dust remainder turns the liquidation into a full close of the account.

    ``penalty_from="collateral"`` is an earlier reading, ``paid = min(penalty, max(collateral,
    0))``: in a partial liquidation whose realized loss leaves collateral below the penalty, the
    rest of the penalty is forgiven even when the remaining positions carry a gain.
    ``penalty_from="equity"`` (default, the doc's rule) caps ``paid`` by the equity left instead (collateral plus the
    unrealized PnL of what remains; identical after a full close), which may leave collateral
    negative next to a gain, as a partial liquidation already can.
    """
    t = liq.liq_target
    if t < WAD:
        raise ValueError("liq_target below WAD: a liquidation could close nothing")
    if liq.min_keeper_reward > liq.max_keeper_reward:
        raise ValueError("min_keeper_reward above max_keeper_reward")
    if scale <= 0:
        raise ValueError("scale must be positive")
    if dust not in ("position", "account"):
        raise ValueError("dust must be 'position' or 'account'")
    if penalty_from not in ("collateral", "equity"):
        raise ValueError("penalty_from must be 'collateral' or 'equity'")
    if insurance < 0:
        raise ValueError("insurance fund cannot be negative")

    terms = [position_terms(p) for p in positions]
    E = collateral + sum(tr.U for tr in terms)
    M = sum(tr.MM for tr in terms)
    Lsum = sum(tr.L for tr in terms)
    if not (any(p.size != 0 for p in positions) and E < M):
        raise NotLiquidatable("not liquidatable")

    tM = ceil_div(t * M, WAD)
    n_open = sum(1 for p in positions if p.size != 0)
    num = tM - E + LIQ_SLACK * n_open
    den = tM - Lsum
    full = E <= 0 or den <= 0
    f = WAD
    if not full:
        f = ceil_div(num * WAD, den)
        if f >= WAD:
            full = True
            f = WAD

    closed: list[int] = []
    dust_hit = False
    for p in positions:
        s = p.size
        if s == 0:
            closed.append(0)
            continue
        if full:
            a = abs(s)
        else:
            a = min(ceil_div(abs(s) * f, WAD), abs(s))
            rest = abs(s) - a
            if rest != 0 and ceil_div(rest * p.price, WAD) < p.market.min_position_notional:
                a = abs(s)
                dust_hit = True
        closed.append(_sign(s) * a)
    if dust_hit and dust == "account":
        full = True
        f = WAD
        closed = [p.size for p in positions]

    new_sizes: list[int] = []
    new_costs: list[int] = []
    realized_each: list[int] = []
    notional_each: list[int] = []
    penalty_each: list[int] = []
    for p, c in zip(positions, closed):
        if c == 0:
            new_sizes.append(p.size)
            new_costs.append(p.cost)
            realized_each.append(0)
            notional_each.append(0)
            penalty_each.append(0)
            continue
        ns, nc, r = _reduce(p.size, p.cost, c, p.price)
        n = ceil_div(abs(c) * p.price, WAD)
        new_sizes.append(ns)
        new_costs.append(nc)
        realized_each.append(r)
        notional_each.append(n)
        penalty_each.append(ceil_div(n * p.market.liq_penalty, WAD))

    all_closed = all(s == 0 for s in new_sizes)
    if all_closed:
        full = True
        f = WAD

    realized = sum(realized_each)
    penalty = sum(penalty_each)
    coll = collateral + realized
    bad_debt = 0
    if all_closed and coll < 0:
        bad_debt = -coll
        coll = 0
    left = coll
    if penalty_from == "equity":
        left += sum(
            floor_div(ns * p.price, WAD) - nc for p, ns, nc in zip(positions, new_sizes, new_costs) if ns != 0
        )
    paid = min(penalty, max(left, 0))
    coll -= paid

    reward = floor_div(liq.keeper_share * penalty, WAD)
    reward = min(max(reward, liq.min_keeper_reward), liq.max_keeper_reward)
    reward = min(reward, penalty)  # never more than the penalty
    # nor more than the account paid, but for the floor: the insurance fund tops a reward up to
    # min_keeper_reward at most, so liquidating yourself gains at most that floor
    reward = min(reward, max(paid, liq.min_keeper_reward))
    reward_tokens = reward // scale

    # the fund is debited the whole reward; the sub-token rest of what the caller is paid in whole
    # tokens comes back to the fund once the call pays out (doc, "Token edges")
    ins = insurance + paid - reward
    reward_shortfall = max(0, -ins)
    ins = max(ins, 0)
    ins -= bad_debt
    bad_debt_written_off = max(0, -ins)
    ins = max(ins, 0)
    ins += reward - reward_tokens * scale
    written_off = reward_shortfall + bad_debt_written_off

    return LiqResult(
        full=full,
        fraction=f,
        closed=closed,
        new_sizes=new_sizes,
        new_costs=new_costs,
        realized=realized,
        closed_notional=sum(notional_each),
        penalty=penalty,
        paid=paid,
        reward=reward,
        bad_debt=bad_debt,
        collateral_after=coll,
        insurance_after=ins,
        written_off=written_off,
        pool_delta=-realized - written_off,
        realized_each=realized_each,
        notional_each=notional_each,
        penalty_each=penalty_each,
        reward_tokens=reward_tokens,
        reward_shortfall=reward_shortfall,
        bad_debt_insurance_paid=bad_debt - bad_debt_written_off,
        bad_debt_written_off=bad_debt_written_off,
    )


# --------------------------------------------------------------------------------------------
# Token edges
# --------------------------------------------------------------------------------------------


def token_scale(decimals: int) -> int:
    """``scale = 10**(18 - d)`` for a collateral token with ``d <= 18`` decimals."""
    if not 0 <= decimals <= 18:
        raise ValueError("decimals must be in [0, 18]")
    return 10 ** (18 - decimals)


def settle_with_pool(pool_carry: int, pool_delta: int, scale: int) -> tuple[int, int]:
    """Settle a signed WAD flow to the pool in whole tokens, carrying the sub-token remainder.

    Returns ``(tokens_to_pool, new_carry)`` with ``tokens_to_pool = floor((carry + delta) / scale)``
    (negative: the pool sends tokens to the engine) and ``new_carry`` in ``[0, scale)``, which is
    the only split that keeps ``engine_balance * scale == sum(collateral) + insurance + carry``.
    """
    total = pool_carry + pool_delta
    return floor_div(total, scale), total % scale


def engine_token_invariant(
    engine_balance_tokens: int,
    scale: int,
    collaterals: list[int],
    insurance: int,
    pool_carry: int,
) -> bool:
    """``engine_balance * scale == sum(collateral) + insurance_fund + pool_carry`` exactly, with
    ``pool_carry`` in ``[0, scale)`` as the doc states."""
    if not 0 <= pool_carry < scale:
        return False
    return engine_balance_tokens * scale == sum(collaterals) + insurance + pool_carry


# --------------------------------------------------------------------------------------------
# Maintenance brackets (the advanced-margin issue)
# --------------------------------------------------------------------------------------------


def bracket_maintenance(notional: int, brackets: list[tuple[int, int]], vol_mmf: int = 0) -> int:
    """Maintenance of ``notional`` under brackets ``[(cap, mmf), ...]`` (caps rising, the last one
    unbounded): each bracket's fraction, floored at ``vol_mmf``, applies to the slice of notional
    between the previous cap and its own; the total is rounded up once."""
    edges = [0] + [cap for cap, _ in brackets]
    total = 0
    for (lo, hi), (_, mmf) in zip(zip(edges, edges[1:]), brackets):
        slice_ = max(0, min(notional, hi) - lo)
        total += slice_ * max(mmf, vol_mmf)
    return ceil_div(total, WAD)
