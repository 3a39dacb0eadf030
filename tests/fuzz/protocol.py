"""Ballast as the fuzz harness drives it: every engine, pool, token and feed call it makes, and the
whole observable state read back in one batched request.

This is the one place that knows function names and argument orders. A new engine entry point
(say `trade_isolated`) is one method here; a new view of the state is one line in `_plan` and one
field in `State`. Struct values (`Position`, `Market`, `Health`, ...) are named tuples decoded from
the compiled ABI, so fields the engine adds appear without a change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from fuzz.abi import Abi
from fuzz.rpc import Node, Reverted, Sent

MAX_UINT = 2**256 - 1


@dataclass(frozen=True)
class Deployment:
    """Addresses (lower-case hex) of one deployment and the actors that use it."""

    engine: str
    config: str
    pool: str
    token: str
    feeds: tuple[str, ...]
    feed_owner: str
    traders: tuple[str, ...]
    keeper: str
    lp: str

    @property
    def actors(self) -> tuple[str, ...]:
        return (*self.traders, self.keeper, self.lp)


@dataclass
class Account:
    """What the chain says of one actor."""

    collateral: int
    mask: int
    tokens: int
    health: Any
    positions: list[Any]  # engine Position by market id
    batch_health: Any  # the same account's entry of healths(all actors)


@dataclass
class State:
    """The protocol's observable state at one block."""

    prices: list[int]
    markets: list[Any]
    accounts: dict[str, Account]
    n_accounts: int
    listed: list[str]  # account_at(0 .. n_accounts - 1)
    liquidatable: list[str]  # liquidatable_accounts(0, 1000)
    insurance: int
    pool_owed: int
    engine_tokens: int
    pool_tokens: int
    pool_assets: int
    pool_free: int
    lp_shares: int
    token_supply: int
    mmf: tuple[int, ...] = ()  # each market's bracket fraction (constant, carried for the model)


@dataclass(frozen=True)
class Constants:
    """Values no rule changes, read once."""

    scale: int
    n_markets: int
    liquidation: Any  # LiquidationParams
    max_pool_usage: int
    mmf: tuple[int, ...]  # each market's (only) bracket fraction: the harness runs flat brackets


class Protocol:
    """Encodes calls, sends them through the node, reads and decodes the state."""

    def __init__(self, node: Node, abis: dict[str, list[dict[str, Any]]], d: Deployment, flat: bool = True):
        self.node = node
        self.flat = flat  # one bracket per market (the cross machine's model needs it)
        self.d = d
        self.engine = Abi(abis["engine"], "engine")
        self.config = Abi(abis["config"], "config")
        self.pool = Abi(abis["pool"], "pool")
        self.token = Abi(abis["token"], "token")
        self.feed = Abi(abis["feed"], "feed")
        self.constants = self._constants()
        self._reads = self._plan()

    # -- actions: each returns the mined transaction or raises Reverted (nothing sent) -----------

    def _send(self, sender: str, to: str, abi: Abi, name: str, *args: Any) -> Sent:
        f = abi.fn(name, len(args))
        sent = self.node.transact(sender, to, f.encode(*args))
        sent.value = f.decode(sent.returned)
        sent.logs = [x for x in (self._decode_log(lg) for lg in sent.receipt["logs"]) if x is not None]
        return sent

    def deposit(self, who: str, amount: int, account: str | None = None) -> Sent:
        if account is None or account == who:
            return self._send(who, self.d.engine, self.engine, "deposit", amount)
        return self._send(who, self.d.engine, self.engine, "deposit", amount, account)

    def withdraw(self, who: str, amount: int) -> Sent:
        return self._send(who, self.d.engine, self.engine, "withdraw", amount)

    def trade(self, who: str, market_id: int, size_delta: int, acceptable_price: int | None = None) -> Sent:
        if acceptable_price is None:
            acceptable_price = MAX_UINT if size_delta > 0 else 0
        return self._send(who, self.d.engine, self.engine, "trade", market_id, size_delta, acceptable_price)

    def liquidate(self, who: str, account: str) -> Sent:
        return self._send(who, self.d.engine, self.engine, "liquidate", account)

    def liquidate_many(self, who: str, accounts: list[str]) -> Sent:
        return self._send(who, self.d.engine, self.engine, "liquidate_many", accounts)

    def fund_insurance(self, who: str, amount: int) -> Sent:
        return self._send(who, self.d.engine, self.engine, "fund_insurance", amount)

    def lp_deposit(self, who: str, assets: int) -> Sent:
        return self._send(who, self.d.pool, self.pool, "deposit", assets)

    def lp_withdraw(self, who: str, assets: int) -> Sent:
        return self._send(who, self.d.pool, self.pool, "withdraw", assets)

    def lp_redeem(self, who: str, shares: int) -> Sent:
        return self._send(who, self.d.pool, self.pool, "redeem", shares)

    def set_answer(self, market_id: int, answer: int) -> Sent:
        return self._send(self.d.feed_owner, self.d.feeds[market_id], self.feed, "set_answer", answer)

    # -- views ------------------------------------------------------------------------------

    def view(self, to: str, abi: Abi, name: str, *args: Any) -> Any:
        """One view call (raises Reverted)."""
        f = abi.fn(name, len(args))
        [out] = self.node.calls([(to, f.encode(*args))])
        if isinstance(out, Reverted):
            raise out
        return f.decode(out)

    def preview_redeem(self, shares: int) -> int:
        return self.view(self.d.pool, self.pool, "previewRedeem", shares)

    def lp_max_assets(self) -> int:
        """What the LP's shares are worth, before the pool's reserve limit."""
        shares = self.view(self.d.pool, self.pool, "balanceOf", self.d.lp)
        return self.view(self.d.pool, self.pool, "convertToAssets", shares)

    def _constants(self) -> Constants:
        e, ea = self.d.engine, self.engine
        n = self.view(e, ea, "n_markets")
        tables = [self.view(self.d.config, self.config, "brackets", m) for m in range(n)]
        assert not self.flat or all(len(t) == 1 for t in tables), "the fuzz model needs one bracket per market"
        return Constants(
            scale=self.view(e, ea, "scale"),
            n_markets=n,
            liquidation=self.view(self.d.config, self.config, "liquidation_params"),
            max_pool_usage=self.view(e, ea, "max_pool_usage"),
            mmf=tuple(t[0][1] for t in tables),
        )

    def _plan(self) -> list[tuple[str, str, Callable[[bytes], Any], tuple]]:
        """Every read of `read`: (to, calldata, decoder, where the value goes in the raw state)."""
        d, e, p, t = self.d, self.engine, self.pool, self.token
        plan = []

        def add(path: tuple, to: str, abi: Abi, name: str, *args: Any) -> None:
            f = abi.fn(name, len(args))
            plan.append((to, f.encode(*args), f.decode, path))

        for m in range(self.constants.n_markets):
            add(("prices", m), d.engine, e, "price", m)
            add(("markets", m), d.engine, e, "market", m)
        for a in d.actors:
            add(("accounts", a, "collateral"), d.engine, e, "collateral", a)
            add(("accounts", a, "mask"), d.engine, e, "position_mask", a)
            add(("accounts", a, "health"), d.engine, e, "health", a)
            add(("accounts", a, "tokens"), d.token, t, "balanceOf", a)
            for m in range(self.constants.n_markets):
                add(("accounts", a, "positions", m), d.engine, e, "position", a, m)
        add(("healths",), d.engine, e, "healths", list(d.actors))
        add(("n_accounts",), d.engine, e, "n_accounts")
        # one index past the actors too: it must revert, the list can only hold actors
        for i in range(len(d.actors) + 1):
            add(("listed", i), d.engine, e, "account_at", i)
        add(("liquidatable",), d.engine, e, "liquidatable_accounts", 0, 1000)
        add(("insurance",), d.engine, e, "insurance_fund")
        add(("pool_owed",), d.engine, e, "pool_owed")
        add(("engine_tokens",), d.token, t, "balanceOf", d.engine)
        add(("pool_tokens",), d.token, t, "balanceOf", d.pool)
        add(("token_supply",), d.token, t, "totalSupply")
        add(("pool_assets",), d.pool, p, "totalAssets")
        add(("pool_free",), d.pool, p, "free_assets")
        add(("lp_shares",), d.pool, p, "balanceOf", d.lp)
        return plan

    def read(self) -> State:
        """The whole state in one request.

        :raises AssertionError: if a view that must answer reverted.
        """
        results = self.node.calls([(to, data) for to, data, _, _ in self._reads])
        n = self.constants.n_markets
        raw: dict[str, Any] = {
            "prices": [None] * n,
            "markets": [None] * n,
            "listed": [None] * (len(self.d.actors) + 1),
            "accounts": {a: {"positions": [None] * n} for a in self.d.actors},
        }
        for (_, _, decode, path), out in zip(self._reads, results):
            where = raw
            for key in path[:-1]:
                where = where[key]
            if isinstance(out, Reverted):
                assert path[0] == "listed", f"{path} reverted: {out.reason}"
                where[path[-1]] = out
            else:
                where[path[-1]] = decode(out)
        count = raw["n_accounts"]
        listed = raw.pop("listed")
        assert count <= len(self.d.actors), f"n_accounts {count} is more than there are actors"
        assert not any(isinstance(x, Reverted) for x in listed[:count]), "account_at reverted below n_accounts"
        assert all(isinstance(x, Reverted) for x in listed[count:]), "account_at answered past n_accounts"
        for a, h in zip(self.d.actors, raw.pop("healths")):
            raw["accounts"][a]["batch_health"] = h
        accounts = {a: Account(**v) for a, v in raw.pop("accounts").items()}
        return State(accounts=accounts, listed=listed[:count], mmf=self.constants.mmf, **raw)

    def _decode_log(self, log: dict[str, Any]) -> Any:
        address = log["address"].lower()
        if address == self.d.engine:
            return self.engine.decode_log(log)
        if address == self.d.pool:
            return self.pool.decode_log(log)
        return None
