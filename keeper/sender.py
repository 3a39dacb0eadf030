"""Sending liquidation transactions: nonces, EIP-1559 fees, locks, receipts, replacements.

- **Nonces** are the keeper's own: the next transaction takes the smallest nonce at or above the
  signer's mined count that no pending transaction holds, so a nonce freed by a failed broadcast is
  reused and never leaves a gap behind later transactions for long (a gap is filled with a
  self-transfer when nothing else needs it).
- **Locks**: a transaction is recorded in the SQLite state, its accounts locked, *before* it is
  broadcast; the record is only dropped when the transaction is final (mined, or its nonce taken by
  another transaction). An account is never in two pending transactions.
- **Stuck** transactions (not mined after ``stuck_after_blocks`` blocks) are replaced with the same
  call and fees raised by at least ``bump_percent`` (12.5% by default) and at least the fresh fees
  of the current base fee, up to the fee cap.
- **At start-up**, what a previous run left pending is replaced (if its liquidations are still
  worth doing) or cancelled with a zero-value self-transfer at the same nonce; transactions in the
  node's pool that the state does not know are cancelled too.
- **Outcomes** come from receipts: the accounts of our ``Liquidation`` events were liquidated by us;
  the others of the batch were taken by someone else first (a lost race, not an error); a reverted
  transaction counts its accounts as failed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from keeper.abi import EVENTS, fn
from keeper.addresses import normalize_address
from keeper.engine import EngineClient, Head
from keeper.fees import FeeCapReached, Fees, initial_fees, replacement_fees
from keeper.metrics import KeeperMetrics
from keeper.rpc import Call, Rpc, RpcError
from keeper.signer import Signer
from keeper.state import AccountsLockedError, KeeperState, NonceInUseError, PendingTx
from keeper.units import WAD

__all__ = ["FeePolicy", "TxPlan", "TxOutcome", "Sender", "CANCEL_GAS", "SEND_ERROR_KINDS", "send_error_kind"]

log = logging.getLogger("keeper.sender")

CANCEL_GAS = 21_000
_LIQUIDATION_TOPIC = EVENTS["Liquidation"].topic
_ETHER = 10**18


@dataclass(frozen=True)
class FeePolicy:
    """How fees are chosen (wei per gas) and raised."""

    priority_fee: int
    max_fee_cap: int
    base_fee_multiplier: Any = 2
    bump_percent: Any = 12.5

    def fresh(self, base_fee: int) -> Fees:
        return initial_fees(
            base_fee, self.priority_fee, max_fee_cap=self.max_fee_cap, base_fee_multiplier=self.base_fee_multiplier
        )

    def replacement(self, old: Fees, base_fee: int) -> Fees:
        return replacement_fees(
            old,
            base_fee=base_fee,
            priority_fee=self.priority_fee,
            max_fee_cap=self.max_fee_cap,
            percent=self.bump_percent,
            base_fee_multiplier=self.base_fee_multiplier,
        )


@dataclass(frozen=True)
class TxPlan:
    """One ``liquidate_many`` transaction to send."""

    accounts: tuple[str, ...]
    gas: int
    expected_count: int = 0
    expected_reward: int = 0


@dataclass
class _Inflight:
    """What is needed to replace or re-broadcast a pending transaction (kept in memory)."""

    to: str
    data: str
    gas: int
    sent_block: int
    kind: str  # "liquidate" or "cancel"
    raw: str | None = None


@dataclass(frozen=True)
class TxOutcome:
    """A transaction that became final."""

    nonce: int
    tx_hash: str | None
    status: str  # "mined", "reverted" or "dropped"
    accounts: tuple[str, ...]
    liquidated: tuple[str, ...] = ()
    lost: tuple[str, ...] = ()
    reward: int = 0
    gas_used: int = 0
    fee_paid: int = 0
    block: int | None = None
    gas_limit: int = 0
    sent_block: int | None = None


@dataclass
class _Status:
    mined_nonce: int = 0
    balance: int | None = None
    consumed_seen: dict[int, int] = field(default_factory=dict)


class Sender:
    """Sends and follows the keeper's transactions for one signer."""

    def __init__(
        self,
        rpc: Rpc,
        engine: EngineClient,
        signer: Signer,
        state: KeeperState,
        *,
        chain_id: int,
        fees: FeePolicy,
        metrics: KeeperMetrics,
        stuck_after_blocks: int = 3,
    ) -> None:
        self.rpc = rpc
        self.engine = engine
        self.signer = signer
        self.address = normalize_address(signer.address)
        self.state = state
        self.chain_id = chain_id
        self.fees = fees
        self.metrics = metrics
        self.stuck_after_blocks = stuck_after_blocks
        self.status = _Status()
        self._inflight: dict[int, _Inflight] = {}
        self._cap_warned: set[int] = set()
        self._rebroadcast_warned: set[int] = set()
        self._foreign_nonces: set[int] = set()
        self.outcomes: list[TxOutcome] = []
        """Every final outcome of this run (for tests, the summary and the benchmark)."""
        self.sent_log: list[tuple[int, str, tuple[str, ...]]] = []
        """``(nonce, hash, accounts)`` of every broadcast, replacements included."""

    # -- status -----------------------------------------------------------------------------

    def pending(self) -> list[PendingTx]:
        return self.state.pending(self.address)

    def status_calls(self) -> list[Call]:
        """Calls whose results :meth:`process_status` takes: nonce, balance, the receipts of
        every hash of every pending transaction, and whether the node still holds the latest."""
        calls: list[Call] = [
            ("eth_getTransactionCount", [self.address, "latest"]),
            ("eth_getBalance", [self.address, "latest"]),
        ]
        pend = self.pending()
        for p in pend:
            for h in p.hashes or (p.tx_hash,):
                calls.append(("eth_getTransactionReceipt", [h]))
        for p in pend:
            calls.append(("eth_getTransactionByHash", [p.tx_hash]))
        self._status_for = [p.nonce for p in pend]
        return calls

    def refresh(self, head: Head) -> list[TxOutcome]:
        """Fetch the status calls and process them."""
        return self.process_status(head, self.rpc.batch(self.status_calls()))

    def process_status(self, head: Head, results: Sequence[Any]) -> list[TxOutcome]:
        """Take the results of :meth:`status_calls` (same order): settle what is final."""
        pend = self.pending()
        if isinstance(results[0], RpcError) or isinstance(results[1], RpcError):
            raise results[0] if isinstance(results[0], RpcError) else results[1]
        self.status.mined_nonce = int(results[0], 16)
        self.status.balance = int(results[1], 16)
        self.metrics.signer_balance_eth.set(self.status.balance / _ETHER)
        if [p.nonce for p in pend] != getattr(self, "_status_for", None):
            raise RuntimeError("status results do not match the pending transactions; call status_calls() first")
        receipts: dict[str, dict[str, Any]] = {}
        i = 2
        for p in pend:
            for h in p.hashes or (p.tx_hash,):
                r = results[i]
                i += 1
                if isinstance(r, dict):
                    receipts[h] = r
        known: dict[int, bool] = {}
        for p in pend:
            known[p.nonce] = isinstance(results[i], dict)
            i += 1
        done: list[TxOutcome] = []
        lost_from_pool: list[str] = []
        for p in pend:
            receipt = next((receipts[h] for h in (p.hashes or (p.tx_hash,)) if h in receipts), None)
            if receipt is not None:
                done.append(self._settle(p, receipt))
            elif p.nonce < self.status.mined_nonce:
                # the nonce was used by a transaction we hold no hash of
                seen = self.status.consumed_seen.get(p.nonce, 0) + 1
                self.status.consumed_seen[p.nonce] = seen
                if seen >= 2:
                    self.status.consumed_seen.pop(p.nonce, None)
                    done.append(self._drop(p))
            elif not known[p.nonce]:
                inflight = self._inflight.get(p.nonce)
                if inflight is not None and inflight.raw is not None:
                    lost_from_pool.append((p.nonce, inflight.raw))
        if lost_from_pool:
            # e.g. anvil drops a later nonce it tried out of order; a node may evict one whose
            # max fee fell under the base fee (then the stuck-transaction replacement takes over)
            answers = self.rpc.batch([("eth_sendRawTransaction", [raw]) for _, raw in lost_from_pool])
            for (nonce, _), answer in zip(lost_from_pool, answers):
                accepted = not isinstance(answer, RpcError) or _already_known(answer)
                if accepted:
                    self.metrics.transactions_sent.inc()
                else:
                    self._count_refusal(answer)
                if accepted or nonce not in self._rebroadcast_warned:
                    self._rebroadcast_warned.add(nonce)
                    log.warning(
                        "the node dropped a pending transaction; sent it again"
                        if accepted
                        else "the node dropped a pending transaction and refuses it again; it will be replaced",
                        extra={"nonce": nonce, "error": None if accepted else answer.message},
                    )
        self.metrics.pending_txs.set(len(self.pending()))
        return done

    def _settle(self, p: PendingTx, receipt: dict[str, Any]) -> TxOutcome:
        inflight = self._inflight.pop(p.nonce, None)
        self.state.resolve_pending(p.sender, p.nonce)
        self.status.consumed_seen.pop(p.nonce, None)
        ok = int(receipt.get("status", "0x0"), 16) == 1
        gas_used = int(receipt.get("gasUsed", "0x0"), 16)
        price = int(receipt.get("effectiveGasPrice", "0x0"), 16)
        fee_paid = gas_used * price
        self.metrics.gas_used.inc(gas_used)
        self.metrics.gas_spent_eth.inc(fee_paid / _ETHER)
        liquidated: list[str] = []
        reward = 0
        if ok:
            for lg in receipt.get("logs", []):
                topics = lg.get("topics") or []
                if (
                    len(topics) == 3
                    and str(topics[0]).lower() == _LIQUIDATION_TOPIC
                    and normalize_address("0x" + str(topics[2])[-40:]) == self.address
                    and normalize_address(str(lg.get("address"))) == self.engine.address
                ):
                    fields = EVENTS["Liquidation"].decode(lg)
                    liquidated.append(fields["account"])
                    reward += fields["reward"]
        got = {a.lower() for a in liquidated}
        lost = tuple(a for a in p.accounts if a.lower() not in got) if ok else ()
        status = "mined" if ok else "reverted"
        if p.accounts:
            if ok:
                self.metrics.liquidations_mined.inc(len(liquidated))
                self.metrics.lost_races.inc(len(lost))
                self.metrics.rewards_usd.inc(reward / WAD)
            else:
                self.metrics.liquidations_failed.inc(len(p.accounts))
        outcome = TxOutcome(
            nonce=p.nonce,
            tx_hash=str(receipt.get("transactionHash")),
            status=status,
            accounts=p.accounts,
            liquidated=tuple(liquidated),
            lost=lost,
            reward=reward,
            gas_used=gas_used,
            fee_paid=fee_paid,
            block=int(receipt.get("blockNumber", "0x0"), 16),
            gas_limit=int(receipt.get("gas", "0x0"), 16) if "gas" in receipt else (inflight.gas if inflight else 0),
            sent_block=inflight.sent_block if inflight else None,
        )
        level = logging.INFO if ok else logging.ERROR
        log.log(
            level,
            "transaction mined" if ok else "transaction reverted",
            extra={
                "nonce": p.nonce,
                "tx": outcome.tx_hash,
                "kind": inflight.kind if inflight else ("liquidate" if p.accounts else "cancel"),
                "block": outcome.block,
                "accounts": len(p.accounts),
                "liquidated": len(liquidated),
                "lost_races": len(lost),
                "reward_usd": reward / WAD,
                "gas_used": gas_used,
            },
        )
        self.outcomes.append(outcome)
        return outcome

    def _drop(self, p: PendingTx) -> TxOutcome:
        self._inflight.pop(p.nonce, None)
        self.state.resolve_pending(p.sender, p.nonce)
        log.warning(
            "nonce taken by a transaction the keeper did not record; releasing its accounts",
            extra={"nonce": p.nonce, "accounts": len(p.accounts)},
        )
        outcome = TxOutcome(nonce=p.nonce, tx_hash=None, status="dropped", accounts=p.accounts)
        self.outcomes.append(outcome)
        return outcome

    # -- sending ----------------------------------------------------------------------------

    def _free_nonces(self, count: int) -> list[int]:
        used = {p.nonce for p in self.pending()} | self._foreign_nonces
        out = []
        n = self.status.mined_nonce
        while len(out) < count:
            if n not in used:
                out.append(n)
            n += 1
        return out

    def _tx(self, nonce: int, to: str, data: str, gas: int, fees: Fees) -> dict[str, Any]:
        return {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to,
            "value": 0,
            "data": data,
            "gas": gas,
            **fees.as_tx_fields(),
        }

    def send(self, head: Head, plans: Sequence[TxPlan]) -> list[PendingTx]:
        """Sign, record (locking the accounts) and broadcast one transaction per plan.

        All broadcasts go out in one batched request. Returns what was sent and accepted.
        """
        if not plans:
            return []
        try:
            fees = self.fees.fresh(head.base_fee)
        except FeeCapReached as exc:
            log.warning("not sending: %s", exc, extra={"base_fee": head.base_fee})
            return []
        nonces = self._free_nonces(len(plans))
        recorded: list[tuple[PendingTx, str, TxPlan]] = []
        now = time.time()
        # Declared gas never falls along the nonces: a builder that skips one transaction for
        # lack of room then skips the later ones too (anvil otherwise takes a smaller later one
        # out of nonce order and drops it from its pool as invalid).
        floor = max((i.gas for n, i in self._inflight.items() if n < nonces[0]), default=0)
        for plan, nonce in zip(plans, nonces):
            gas = max(plan.gas, floor)
            floor = gas
            data = fn("liquidate_many").encode(list(plan.accounts))
            signed = self.signer.sign(self._tx(nonce, self.engine.address, data, gas, fees))
            p = PendingTx(
                sender=self.address,
                nonce=nonce,
                tx_hash=signed.hash,
                accounts=plan.accounts,
                fees=fees,
                sent_at=now,
                first_sent_at=now,
            )
            try:
                self.state.record_pending(p)
            except (AccountsLockedError, NonceInUseError) as exc:
                log.warning("not sending a batch: %s", exc)
                continue
            self._inflight[nonce] = _Inflight(self.engine.address, data, gas, head.number, "liquidate", signed.raw)
            recorded.append((p, signed.raw, plan))
        if not recorded:
            return []
        results = self.rpc.batch([("eth_sendRawTransaction", [raw]) for _, raw, _ in recorded])
        sent: list[PendingTx] = []
        for (p, _, plan), res in zip(recorded, results):
            if isinstance(res, RpcError) and not _already_known(res) and not self._broadcast_failed(p, res):
                continue
            sent.append(p)
            self.sent_log.append((p.nonce, p.tx_hash, p.accounts))
            self.metrics.transactions_sent.inc()
            self.metrics.liquidations_sent.inc(len(p.accounts))
            log.info(
                "liquidation sent",
                extra={
                    "nonce": p.nonce,
                    "tx": p.tx_hash,
                    "accounts": len(p.accounts),
                    "gas": plan.gas,
                    "expected_count": plan.expected_count,
                    "expected_reward_usd": plan.expected_reward / WAD,
                    "max_fee": fees.max_fee_per_gas,
                    "block": head.number,
                },
            )
        self.metrics.pending_txs.set(len(self.pending()))
        return sent

    def _count_refusal(self, err: RpcError) -> str:
        kind = send_error_kind(err.message)
        self.metrics.send_errors.labels(kind=kind).inc()
        return kind

    def _broadcast_failed(self, p: PendingTx, err: RpcError) -> bool:
        """Release a transaction the node refused. Returns ``True`` instead when the refusal is
        "nonce too low" because this very transaction is mined: an earlier attempt reached the
        node and its answer was lost (a timeout, then the retry). It then stays recorded, and
        the next status check settles it like any other mined transaction."""
        kind = self._count_refusal(err)
        if kind == "nonce_too_low" and self._is_mined(p.tx_hash):
            log.warning(
                "broadcast answered 'nonce too low', but the transaction is already mined: an "
                "earlier attempt got through and its answer was lost",
                extra={"nonce": p.nonce, "tx": p.tx_hash},
            )
            return True
        self.state.resolve_pending(p.sender, p.nonce)
        self._inflight.pop(p.nonce, None)
        if kind == "nonce_too_low":
            # mined meanwhile by something else: the accounts are retried next block
            log.warning("broadcast refused, resyncing the nonce", extra={"nonce": p.nonce, "error": err.message})
            self.status.mined_nonce = max(self.status.mined_nonce, p.nonce + 1)
            return False
        if kind == "underpriced":
            # a transaction the keeper does not know holds this nonce in the pool: cancel it
            # (next pass, with raised fees) and keep new transactions off the nonce meanwhile
            log.warning("a foreign transaction holds a nonce; it will be cancelled", extra={"nonce": p.nonce})
            self._foreign_nonces.add(p.nonce)
            return False
        self.metrics.liquidations_failed.inc(len(p.accounts))
        if kind == "insufficient_funds":
            log.error(
                "the signer cannot pay for gas: fund it",
                extra={"signer": self.address, "nonce": p.nonce, "error": err.message},
            )
        else:
            log.error("broadcast refused", extra={"nonce": p.nonce, "error": err.message})
        return False

    def _is_mined(self, tx_hash: str) -> bool:
        receipt = self.rpc.batch([("eth_getTransactionReceipt", [tx_hash])])[0]
        return isinstance(receipt, dict)

    # -- replacement --------------------------------------------------------------------------

    def replace_stuck(self, head: Head) -> int:
        """Replace transactions pending for ``stuck_after_blocks`` blocks or more; fill nonce
        gaps that hold later transactions back. Returns how many were broadcast."""
        count = 0
        for p in self.pending():
            inflight = self._inflight.get(p.nonce)
            if inflight is None:
                # left by an earlier run and not handled at start-up: treat it as just sent
                self._inflight[p.nonce] = inflight = self._rebuild(p, head)
            if head.number - inflight.sent_block >= self.stuck_after_blocks:
                if self._replace(p, inflight, head, cancel=False):
                    count += 1
        if self._foreign_nonces:
            foreign = sorted(n for n in self._foreign_nonces if n >= self.status.mined_nonce)
            self._foreign_nonces.clear()
            try:
                base = self.fees.fresh(head.base_fee)
                count += self._send_cancels(head, foreign, self.fees.replacement(base, head.base_fee))
            except FeeCapReached as exc:
                log.warning("cannot cancel a foreign transaction: %s", exc)
        try:
            count += self._fill_gaps(head)
        except FeeCapReached as exc:
            log.warning("cannot fill a nonce gap: %s", exc)
        return count

    def _rebuild(self, p: PendingTx, head: Head) -> _Inflight:
        if p.accounts:
            data = fn("liquidate_many").encode(list(p.accounts))
            return _Inflight(self.engine.address, data, 0, head.number, "liquidate")
        return _Inflight(self.address, "0x", CANCEL_GAS, head.number, "cancel")

    def _replace(self, p: PendingTx, inflight: _Inflight, head: Head, *, cancel: bool) -> bool:
        try:
            fees = self.fees.replacement(p.fees, head.base_fee)
        except FeeCapReached as exc:
            if p.nonce not in self._cap_warned:
                self._cap_warned.add(p.nonce)
                log.warning("cannot replace a stuck transaction: %s", exc, extra={"nonce": p.nonce})
            return False
        if cancel:
            inflight = _Inflight(self.address, "0x", CANCEL_GAS, inflight.sent_block, "cancel")
        elif inflight.gas == 0:
            inflight.gas = self._estimate(inflight.data) or 0
            if inflight.gas == 0:
                return self._replace(p, inflight, head, cancel=True)
        signed = self.signer.sign(self._tx(p.nonce, inflight.to, inflight.data, inflight.gas, fees))
        res = self.rpc.batch([("eth_sendRawTransaction", [signed.raw])])[0]
        if isinstance(res, RpcError) and not _already_known(res):
            if self._count_refusal(res) == "nonce_too_low":
                return False  # it was just mined; the next status check settles it
            log.warning("replacement refused", extra={"nonce": p.nonce, "error": res.message})
            return False
        self.state.replace_pending(p.sender, p.nonce, signed.hash, fees, time.time())
        inflight.sent_block = head.number
        inflight.raw = signed.raw
        self._inflight[p.nonce] = inflight
        self.sent_log.append((p.nonce, signed.hash, p.accounts if inflight.kind == "liquidate" else ()))
        self.metrics.transactions_sent.inc()
        if inflight.kind == "cancel":
            self.metrics.cancellations.inc()
        else:
            self.metrics.replacements.inc()
        log.info(
            "transaction cancelled" if inflight.kind == "cancel" else "stuck transaction replaced",
            extra={"nonce": p.nonce, "tx": signed.hash, "max_fee": fees.max_fee_per_gas, "attempt": len(p.hashes) + 1},
        )
        return True

    def _estimate(self, data: str) -> int | None:
        # At "latest", said explicitly: a node's default may be "pending", where the very
        # transaction being replaced has already liquidated the accounts (a far smaller estimate,
        # and a replacement that runs out of gas).
        call = {"from": self.address, "to": self.engine.address, "data": data}
        res = self.rpc.batch([("eth_estimateGas", [call, "latest"])])[0]
        if isinstance(res, RpcError):
            return None
        return int(int(res, 16) * 1.2)

    def _fill_gaps(self, head: Head) -> int:
        pend = sorted(p.nonce for p in self.pending())
        if not pend:
            return 0
        gaps = [n for n in range(self.status.mined_nonce, pend[-1]) if n not in set(pend)]
        if not gaps:
            return 0
        return self._send_cancels(head, gaps, self.fees.fresh(head.base_fee))

    def _send_cancels(self, head: Head, nonces: Sequence[int], fees: Fees) -> int:
        sent = 0
        for n in nonces:
            f = fees
            for _ in range(8):
                signed = self.signer.sign(self._tx(n, self.address, "0x", CANCEL_GAS, f))
                res = self.rpc.batch([("eth_sendRawTransaction", [signed.raw])])[0]
                if isinstance(res, RpcError) and not _already_known(res):
                    self._count_refusal(res)
                if isinstance(res, RpcError) and "underpriced" in res.message.lower():
                    try:
                        f = self.fees.replacement(f, head.base_fee)
                    except FeeCapReached:
                        break
                    continue
                if isinstance(res, RpcError) and not _already_known(res):
                    log.warning("cancel refused", extra={"nonce": n, "error": res.message})
                    break
                now = time.time()
                try:
                    self.state.record_pending(
                        PendingTx(self.address, n, signed.hash, (), f, now, now)
                    )
                except NonceInUseError:
                    self.state.replace_pending(self.address, n, signed.hash, f, now)
                self._inflight[n] = _Inflight(self.address, "0x", CANCEL_GAS, head.number, "cancel", signed.raw)
                self.sent_log.append((n, signed.hash, ()))
                self.metrics.transactions_sent.inc()
                self.metrics.cancellations.inc()
                log.info("nonce filled with a cancel", extra={"nonce": n, "tx": signed.hash})
                sent += 1
                break
        return sent

    # -- start-up -------------------------------------------------------------------------------

    def recover(self, head: Head) -> dict[str, int]:
        """Settle, replace or cancel what an earlier run left pending; cancel unknown pool
        transactions of the signer. Returns counts by action."""
        counts = {"settled": 0, "replaced": 0, "cancelled": 0, "unknown_cancelled": 0}
        counts["settled"] = len(self.refresh(head))
        pool_count = int(self.rpc.request("eth_getTransactionCount", [self.address, "pending"]), 16)
        known = {p.nonce for p in self.pending()}
        for p in self.pending():
            inflight = self._rebuild(p, head)
            keep = False
            if p.accounts:
                sim = self.engine.simulate_many([p.accounts], self.address, "latest")[0]
                keep = not isinstance(sim, RpcError) and sim[0] > 0
            if self._replace(p, inflight, head, cancel=not keep):
                counts["replaced" if keep else "cancelled"] += 1
        unknown = [n for n in range(self.status.mined_nonce, pool_count) if n not in known]
        if unknown and head.base_fee <= self.fees.max_fee_cap:
            base = self.fees.fresh(head.base_fee)
            doubled = Fees(
                min(self.fees.max_fee_cap, base.max_fee_per_gas * 2),
                min(self.fees.max_fee_cap, base.max_priority_fee_per_gas * 2),
            )
            counts["unknown_cancelled"] = self._send_cancels(head, unknown, doubled)
        if any(counts.values()):
            log.info("pending transactions recovered at start-up", extra=counts)
        return counts


SEND_ERROR_KINDS = ("nonce_too_low", "underpriced", "insufficient_funds", "fee_too_low", "other")
"""The kinds :func:`send_error_kind` sorts a node's refusals of a raw transaction into."""


def send_error_kind(message: str) -> str:
    """A short label for a node's refusal of a raw transaction (geth, anvil, erigon wordings)."""
    text = message.lower()
    if "nonce too low" in text or "nonce has already been used" in text:
        return "nonce_too_low"
    if "underpriced" in text:
        return "underpriced"
    if "insufficient funds" in text:
        return "insufficient_funds"
    if "fee cap" in text or "less than block base fee" in text or "max fee per gas less than" in text:
        return "fee_too_low"
    return "other"


def _already_known(err: RpcError) -> bool:
    text = err.message.lower()
    return "already known" in text or "known transaction" in text or "already imported" in text
