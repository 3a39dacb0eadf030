"""Reading the MarginEngine: batched ``eth_call`` requests built with :mod:`keeper.abi`.

Every method here builds JSON-RPC calls and decodes their results; several of them also expose
the calls alone (``*_calls``) so the keeper can put unrelated reads of one block into a single
request. All reads of one block are pinned to that block's number, so a batch sees one state.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from keeper.abi import (
    EVENTS,
    HealthTuple,
    decode_address_array,
    decode_healths,
    decode_word_int,
    decode_word_uint,
    fn,
)
from eth_utils import to_checksum_address

from keeper.addresses import normalize_address
from keeper.ranking import AccountModel, Position
from keeper.rpc import Call, Rpc, RpcError

__all__ = [
    "Head",
    "MarketInfo",
    "EngineReadError",
    "EngineClient",
    "block_tag",
    "WATCHED_EVENTS",
]

log = logging.getLogger("keeper.engine")

WATCHED_EVENTS = (
    "AccountListed",
    "Trade",
    "Deposit",
    "Withdraw",
    "Liquidation",
    "PositionLiquidated",
    "MarketAdded",
    "MarketParamsSet",
)
"""Engine events that change an account's model or a market's parameters."""

_TOPIC_TO_EVENT = {EVENTS[n].topic: EVENTS[n] for n in WATCHED_EVENTS}
MAX_VIEW = 1000
"""Longest list the engine's views take or return."""


class EngineReadError(RuntimeError):
    """A read the keeper needs failed (a reverting view, an inconsistent answer)."""


def block_tag(block: int | str) -> str:
    """A JSON-RPC block parameter: a number as hex, or a tag such as ``latest``."""
    return hex(block) if isinstance(block, int) else block


def _hex_int(value: Any) -> int:
    return int(value, 16) if isinstance(value, str) else int(value or 0)


@dataclass(frozen=True)
class Head:
    """The block the keeper works on."""

    number: int
    hash: str
    timestamp: int
    base_fee: int
    gas_limit: int

    @classmethod
    def from_rpc(cls, block: Mapping[str, Any]) -> Head:
        return cls(
            number=_hex_int(block["number"]),
            hash=str(block.get("hash") or ""),
            timestamp=_hex_int(block["timestamp"]),
            base_fee=_hex_int(block.get("baseFeePerGas", 0)),
            gas_limit=_hex_int(block["gasLimit"]),
        )


@dataclass(frozen=True)
class MarketInfo:
    """A market's id, name (from the deployment file) and the parameters the model needs."""

    id: int
    name: str
    oracle: str
    mmf: int
    imf: int
    im_multiplier: int
    liq_penalty: int
    min_position_notional: int
    funding_index: int = 0  # cumulative funding per whole base unit when read, WAD USD
    brackets: tuple[tuple[int, int], ...] = ()  # (cap, mmf), ascending, as RiskConfig holds them
    vol_mmf: int = 0  # the volatility term when read, WAD

    def effective_mmf(self, notional: int) -> int:
        """The average maintenance fraction of a position of `notional` WAD USD: its brackets,
        each raised to the volatility term, over the notional (the market's `mmf` with none)."""
        if notional <= 0 or not self.brackets:
            return self.mmf
        total, lower = 0, 0
        for cap, mmf in self.brackets:
            total += (min(notional, cap) - lower) * max(mmf, self.vol_mmf)
            if notional <= cap:
                break
            lower = cap
        return -(-total // notional)


class EngineClient:
    """Typed, batched reads of one engine.

    :param healths_batch: accounts per ``healths`` call (at most 1000).
    :param sweep_page: list entries per ``liquidatable_accounts`` call (at most 1000).
    Both shrink by halves when the node refuses a call for its gas (an ``eth_call`` gas cap).
    """

    def __init__(
        self,
        rpc: Rpc,
        engine: str,
        *,
        healths_batch: int = 500,
        sweep_page: int = 1000,
    ) -> None:
        self.rpc = rpc
        self.address = normalize_address(engine)
        self.healths_batch = max(1, min(MAX_VIEW, healths_batch))
        self.sweep_page = max(1, min(MAX_VIEW, sweep_page))

    # -- call builders ----------------------------------------------------------------------

    def call(self, data: str, block: int | str = "latest", sender: str | None = None) -> Call:
        """An ``eth_call`` to the engine."""
        tx: dict[str, Any] = {"to": self.address, "data": data}
        if sender is not None:
            tx["from"] = sender
        return ("eth_call", [tx, block_tag(block)])

    def view(self, name: str, *args: Any, block: int | str = "latest") -> Call:
        """An ``eth_call`` of the view ``name``."""
        return self.call(fn(name).encode(*args), block)

    def logs_call(self, from_block: int, to_block: int) -> Call:
        """``eth_getLogs`` of every watched engine event in ``[from_block, to_block]``."""
        return (
            "eth_getLogs",
            [
                {
                    "address": self.address,
                    "fromBlock": hex(from_block),
                    "toBlock": hex(to_block),
                    "topics": [list(_TOPIC_TO_EVENT)],
                }
            ],
        )

    # -- simple reads -----------------------------------------------------------------------

    def read(self, name: str, *args: Any, block: int | str = "latest") -> Any:
        """Call a view and decode its single output.

        :raises RpcError: if the call reverts.
        """
        result = self.rpc.request(*self.view(name, *args, block=block))
        return fn(name).decode_one(result)

    def chain_id(self) -> int:
        return _hex_int(self.rpc.request("eth_chainId"))

    def head(self, block: int | str = "latest") -> Head:
        found = self.rpc.request("eth_getBlockByNumber", [block_tag(block), False])
        if found is None:
            raise EngineReadError(f"the node has no block {block}")
        return Head.from_rpc(found)

    def has_code(self, address: str | None = None, block: int | str = "latest") -> bool:
        code = self.rpc.request("eth_getCode", [address or self.address, block_tag(block)])
        return isinstance(code, str) and len(code) > 2

    def markets(self, names: Mapping[int, str], block: int | str = "latest") -> list[MarketInfo]:
        """Every listed market with its parameters; names come from the deployment file."""
        n = self.read("n_markets", block=block)
        config = normalize_address(self.read("config", block=block))
        calls = [self.view("market", i, block=block) for i in range(n)]
        calls += [self.view("market_state", i, block=block) for i in range(n)]
        calls += [
            ("eth_call", [{"to": config, "data": fn("brackets").encode(i)}, block_tag(block)]) for i in range(n)
        ]
        results = self.rpc.batch(calls)
        out = []
        for i in range(n):
            raw, state, table = results[i], results[n + i], results[2 * n + i]
            for what, r in (("market", raw), ("brackets of market", table)):
                if isinstance(r, RpcError):
                    raise EngineReadError(f"cannot read {what} {i}: {r}")
            oracle, params, _, _ = fn("market").decode_one(raw)
            brackets = fn("brackets").decode_one(table)
            # the model's flat fraction: the first bracket's, raised to the volatility term (a
            # market whose oracle reverts right now keeps the bracket alone); larger positions
            # need more, which healths and the sweep confirm
            index, _, _, vol_mmf = (0, 0, 0, 0) if isinstance(state, RpcError) else fn("market_state").decode_one(state)
            out.append(
                MarketInfo(
                    id=i,
                    name=names.get(i, f"market-{i}"),
                    oracle=normalize_address(oracle),
                    mmf=max(brackets[0][1], vol_mmf),
                    imf=params[0],
                    im_multiplier=params[1],
                    liq_penalty=params[2],
                    min_position_notional=params[7],
                    funding_index=index,
                    brackets=tuple((int(c), int(f)) for c, f in brackets),
                    vol_mmf=vol_mmf,
                )
            )
        return out

    # -- prices -----------------------------------------------------------------------------

    def price_calls(self, market_ids: Iterable[int], block: int | str) -> list[Call]:
        return [self.view("price", m, block=block) for m in market_ids]

    @staticmethod
    def decode_prices(market_ids: Sequence[int], results: Sequence[Any]) -> dict[int, int | RpcError]:
        """Prices by market id; a market whose oracle reverts (stale, ...) maps to the error."""
        out: dict[int, int | RpcError] = {}
        for m, raw in zip(market_ids, results):
            out[m] = raw if isinstance(raw, RpcError) else decode_word_uint(_b(raw))
        return out

    def prices(self, market_ids: Sequence[int], block: int | str = "latest") -> dict[int, int | RpcError]:
        return self.decode_prices(market_ids, self.rpc.batch(self.price_calls(market_ids, block)))

    # -- the account list -------------------------------------------------------------------

    def account_list(self, block: int | str = "latest") -> list[str]:
        """Every account of the on-chain list (accounts holding a position) at ``block``."""
        n = self.read("n_accounts", block=block)
        results = self.rpc.batch([self.view("account_at", i, block=block) for i in range(n)])
        out = []
        for i, raw in enumerate(results):
            if isinstance(raw, RpcError):
                raise EngineReadError(f"cannot read account_at({i}): {raw}")
            out.append(normalize_address("0x" + _b(raw)[12:32].hex()))
        return out

    # -- account models ---------------------------------------------------------------------

    def read_models(
        self,
        accounts: Sequence[str],
        markets: Mapping[int, MarketInfo],
        block: int | str = "latest",
    ) -> dict[str, AccountModel]:
        """Collateral and cross positions of each account, read in two batched rounds.

        Round one reads ``position_mask`` and ``collateral``; round two the positions of the
        markets each mask names. An account without positions gets a model with none.
        """
        if not accounts:
            return {}
        first: list[Call] = []
        for a in accounts:
            first.append(self.view("position_mask", a, block=block))
            first.append(self.view("collateral", a, block=block))
        res = self.rpc.batch(first)
        masks: dict[str, int] = {}
        collateral: dict[str, int] = {}
        for i, a in enumerate(accounts):
            raw_mask, raw_coll = res[2 * i], res[2 * i + 1]
            if isinstance(raw_mask, RpcError) or isinstance(raw_coll, RpcError):
                raise EngineReadError(f"cannot read account {a}: {raw_mask if isinstance(raw_mask, RpcError) else raw_coll}")
            masks[a] = decode_word_uint(_b(raw_mask))
            collateral[a] = decode_word_int(_b(raw_coll))
        second: list[Call] = []
        keys: list[tuple[str, int]] = []
        for a in accounts:
            mask = masks[a] & 0xFFFF  # bit 16 + i marks position i isolated; position() says so too
            m = 0
            while mask >> m:
                if (mask >> m) & 1:
                    second.append(self.view("position", a, m, block=block))
                    keys.append((a, m))
                m += 1
        res2 = self.rpc.batch(second) if second else []
        positions: dict[str, list[Position]] = {a: [] for a in accounts}
        for (a, m), raw in zip(keys, res2):
            if isinstance(raw, RpcError):
                raise EngineReadError(f"cannot read position({a}, {m}): {raw}")
            data = _b(raw)
            size, cost, entry, margin = (decode_word_int(data, i) for i in range(4))
            isolated = decode_word_uint(data, 4) == 1
            info = markets.get(m)
            if info is None:
                raise EngineReadError(f"account {a} holds market {m}, which the keeper does not know")
            funding = -((-size * (info.funding_index - entry)) // 10**18)  # owed, rounded up
            positions[a].append(
                Position(
                    market_id=m,
                    size=size,
                    cost=cost,
                    mmf=info.effective_mmf(abs(cost)),  # the cost basis stands in for notional
                    funding_owed=funding,
                    isolated_margin=margin if isolated else None,
                )
            )
        return {
            a: AccountModel(account=a, collateral=collateral[a], positions=tuple(positions[a]))
            for a in accounts
        }

    # -- health checks ----------------------------------------------------------------------

    def healths(
        self, accounts: Sequence[str], block: int | str = "latest"
    ) -> tuple[dict[str, HealthTuple], list[RpcError]]:
        """On-chain health of each account, ``healths_batch`` per call, all in one request.

        Returns the healths found and the errors of chunks that reverted (an oracle that is
        stale makes every chunk holding one of its positions revert).
        """
        chunks = [
            list(accounts[i : i + self.healths_batch])
            for i in range(0, len(accounts), self.healths_batch)
        ]
        return self._healths_chunks(chunks, block)

    def _healths_chunks(
        self, chunks: list[list[str]], block: int | str
    ) -> tuple[dict[str, HealthTuple], list[RpcError]]:
        out: dict[str, HealthTuple] = {}
        errors: list[RpcError] = []
        if not chunks:
            return out, errors
        results = self.rpc.batch([self.view("healths", c, block=block) for c in chunks])
        retry: list[list[str]] = []
        for chunk, raw in zip(chunks, results):
            if isinstance(raw, RpcError):
                if not raw.is_revert and len(chunk) > 1:
                    half = len(chunk) // 2
                    retry += [chunk[:half], chunk[half:]]
                    self.healths_batch = max(1, min(self.healths_batch, half))
                else:
                    errors.append(raw)
                continue
            found = decode_healths(raw)
            if len(found) != len(chunk):
                raise EngineReadError(f"healths returned {len(found)} entries for {len(chunk)} accounts")
            out.update(zip(chunk, found))
        if retry:
            log.info("healths chunk refused, using smaller chunks", extra={"chunk": self.healths_batch})
            more, errs = self._healths_chunks(retry, block)
            out.update(more)
            errors += errs
        return out, errors

    def sweep_calls(self, n_accounts: int, block: int | str) -> list[Call]:
        """``liquidatable_accounts`` pages covering list entries ``[0, n_accounts)``."""
        return [
            self.view("liquidatable_accounts", start, self.sweep_page, block=block)
            for start in range(0, n_accounts, self.sweep_page)
        ]

    def sweep(self, block: int | str, n_accounts: int | None = None) -> tuple[list[str], int, list[RpcError]]:
        """Every liquidatable account of the on-chain list at ``block``.

        Returns ``(liquidatable, entries checked, errors)``.
        """
        if n_accounts is None:
            n_accounts = self.read("n_accounts", block=block)
        pages = [(s, min(self.sweep_page, n_accounts - s)) for s in range(0, n_accounts, self.sweep_page)]
        found: list[str] = []
        errors: list[RpcError] = []
        while pages:
            results = self.rpc.batch(
                [self.view("liquidatable_accounts", s, lim, block=block) for s, lim in pages]
            )
            retry = []
            for (start, limit), raw in zip(pages, results):
                if isinstance(raw, RpcError):
                    if not raw.is_revert and limit > 1:
                        half = limit // 2
                        retry += [(start, half), (start + half, limit - half)]
                        self.sweep_page = max(1, min(self.sweep_page, half))
                    else:
                        errors.append(raw)
                    continue
                found += decode_address_array(raw)
            pages = retry
        return found, n_accounts, errors

    # -- simulation -------------------------------------------------------------------------

    def liquidate_many_calls(
        self, batches: Sequence[Sequence[str]], sender: str, block: int | str = "latest"
    ) -> list[Call]:
        return [
            self.call(fn("liquidate_many").encode(list(b)), block, sender=sender) for b in batches
        ]

    def simulate_many(
        self, batches: Sequence[Sequence[str]], sender: str, block: int | str = "latest"
    ) -> list[tuple[int, int] | RpcError]:
        """``eth_call`` of ``liquidate_many`` for each batch: ``(count, reward)`` or the error."""
        results = self.rpc.batch(self.liquidate_many_calls(batches, sender, block))
        out: list[tuple[int, int] | RpcError] = []
        for raw in results:
            if isinstance(raw, RpcError):
                out.append(raw)
            else:
                data = _b(raw)
                out.append((decode_word_uint(data, 0), decode_word_uint(data, 1)))
        return out

    # -- events -----------------------------------------------------------------------------

    def logs(self, from_block: int, to_block: int) -> list[dict[str, Any]]:
        """Watched engine events in ``[from_block, to_block]``, decoded.

        :raises RpcError: if the provider refuses the range (the caller shrinks it).
        """
        return decode_logs(self.rpc.request(*self.logs_call(from_block, to_block)))


_ACCOUNT_TOPIC_EVENTS = {
    EVENTS[n].topic: n
    for n in ("AccountListed", "Trade", "Deposit", "Withdraw", "Liquidation", "PositionLiquidated")
}


def decode_logs(raw_logs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Watched events as dicts with ``event``, ``block``, ``tx_hash`` and, for account events,
    ``account`` (read from the first topic; the data is not decoded, so that a start-up scan over
    tens of thousands of events stays fast). Market events are decoded in full."""
    out = []
    for lg in raw_logs:
        if lg.get("removed"):
            continue
        topics = lg.get("topics") or []
        if not topics:
            continue
        topic0 = str(topics[0]).lower()
        name = _ACCOUNT_TOPIC_EVENTS.get(topic0)
        if name is not None:
            if len(topics) < 2:
                continue
            fields: dict[str, Any] = {
                "event": name,
                "account": to_checksum_address("0x" + str(topics[1])[-40:]),
            }
        else:
            ev = _TOPIC_TO_EVENT.get(topic0)
            if ev is None:
                continue
            fields = ev.decode(dict(lg))
            fields["event"] = ev.name
        fields["block"] = _hex_int(lg.get("blockNumber"))
        fields["tx_hash"] = lg.get("transactionHash")
        out.append(fields)
    return out


def _b(raw: Any) -> bytes:
    if isinstance(raw, bytes):
        return raw
    text = str(raw)
    return bytes.fromhex(text[2:] if text.startswith("0x") else text)
