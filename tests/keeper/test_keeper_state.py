"""The keeper's SQLite state: checkpoint, accounts, pending transactions and account locks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from keeper.fees import Fees
from keeper.state import (
    AccountsLockedError,
    KeeperState,
    NonceInUseError,
    PendingTx,
    StateMismatchError,
    UnknownPendingError,
)

SIGNER = "0x" + "5a" * 20
ENGINE = "0x" + "11" * 20


def tx_hash(i: int) -> str:
    return "0x" + f"{i:064x}"


def pending(nonce: int, accounts: list[str], h: int | None = None) -> PendingTx:
    return PendingTx(
        sender=SIGNER,
        nonce=nonce,
        tx_hash=tx_hash(h if h is not None else nonce + 1),
        accounts=tuple(accounts),
        fees=Fees(30 * 10**9, 10**9),
        sent_at=1000.0,
        first_sent_at=1000.0,
    )


def test_restart__keeps_checkpoint_accounts_and_pending(
    tmp_path: Path, make_addresses: Callable[..., list[str]]
) -> None:
    a, b, c = make_addresses(3)
    path = tmp_path / "state" / "keeper-state.sqlite"
    with KeeperState(path) as state:
        assert state.checkpoint() is None
        state.bind(31337, ENGINE)
        state.record_scan(500, [(a, 120), (b, 480)])
        state.record_pending(pending(7, [c]))
    with KeeperState(path) as state:
        state.bind(31337, ENGINE)
        assert state.checkpoint() == 500
        assert state.accounts() == [a, b]
        assert [p.accounts for p in state.pending()] == [(c,)]
        assert state.is_locked(c)
        state.record_scan(900, [(c, 700)])
    with KeeperState(path) as state:
        assert state.checkpoint() == 900
        assert state.account_count() == 3


def test_accounts__first_seen_block_is_the_earliest(
    make_addresses: Callable[..., list[str]],
) -> None:
    (a,) = make_addresses(1)
    with KeeperState(":memory:") as state:
        assert state.add_accounts([(a, 50)]) == 1
        assert state.add_accounts([(a.lower(), 80)]) == 0  # same account, later block
        assert state.add_accounts([(a, 20)]) == 1
        assert [(k.address, k.first_seen_block) for k in state.known_accounts()] == [(a, 20)]


def test_checkpoint__never_moves_back_unless_asked() -> None:
    with KeeperState(":memory:") as state:
        state.save_checkpoint(100)
        with pytest.raises(ValueError):
            state.save_checkpoint(99)
        state.save_checkpoint(90, rewind=True)
        assert state.checkpoint() == 90


def test_record_scan__is_atomic(make_addresses: Callable[..., list[str]]) -> None:
    (a,) = make_addresses(1)
    with KeeperState(":memory:") as state:
        state.save_checkpoint(100)
        with pytest.raises(ValueError):
            state.record_scan(50, [(a, 40)])
        assert state.accounts() == []  # nothing half-saved
        assert state.checkpoint() == 100


def test_lock__account_never_in_two_pending_txs(make_addresses: Callable[..., list[str]]) -> None:
    a, b, c = make_addresses(3)
    with KeeperState(":memory:") as state:
        state.record_pending(pending(0, [a, b]))
        with pytest.raises(AccountsLockedError) as info:
            state.record_pending(pending(1, [c, b.lower()]))
        assert info.value.accounts == [b]
        # All or nothing: c was not locked by the refused transaction.
        assert not state.is_locked(c)
        assert [p.nonce for p in state.pending()] == [0]
        assert state.locked_accounts() == {a, b}


def test_lock__released_when_the_transaction_resolves(
    make_addresses: Callable[..., list[str]],
) -> None:
    a, b = make_addresses(2)
    with KeeperState(":memory:") as state:
        state.record_pending(pending(0, [a, b]))
        resolved = state.resolve_pending(SIGNER, 0)
        assert resolved is not None and resolved.accounts == (a, b)
        assert state.locked_accounts() == set()
        state.record_pending(pending(1, [b]))  # b may go into a new transaction now
        assert state.resolve_pending(SIGNER, 5) is None


def test_lock__repeated_account_in_one_tx__refused(
    make_addresses: Callable[..., list[str]],
) -> None:
    (a,) = make_addresses(1)
    with KeeperState(":memory:") as state:
        with pytest.raises(AccountsLockedError):
            state.record_pending(pending(0, [a, a.lower()]))
        assert state.pending() == []


def test_lock__seen_by_a_second_connection_to_the_same_file(
    tmp_path: Path, make_addresses: Callable[..., list[str]]
) -> None:
    (a,) = make_addresses(1)
    path = tmp_path / "shared.sqlite"
    with KeeperState(path) as one, KeeperState(path) as two:
        one.record_pending(pending(0, [a]))
        with pytest.raises(AccountsLockedError):
            two.record_pending(
                PendingTx("0x" + "77" * 20, 0, tx_hash(99), (a,), Fees(2, 1), 1.0, 1.0)
            )


def test_nonce__in_use__refused_replace_instead(make_addresses: Callable[..., list[str]]) -> None:
    a, b = make_addresses(2)
    with KeeperState(":memory:") as state:
        state.record_pending(pending(3, [a]))
        with pytest.raises(NonceInUseError):
            state.record_pending(pending(3, [b], h=50))
        assert not state.is_locked(b)


def test_replace__keeps_locks_and_every_hash(make_addresses: Callable[..., list[str]]) -> None:
    (a,) = make_addresses(1)
    with KeeperState(":memory:") as state:
        state.record_pending(pending(3, [a], h=1))
        replaced = state.replace_pending(SIGNER, 3, tx_hash(2), Fees(34 * 10**9, 2 * 10**9), 1012.0)
        assert replaced.tx_hash == tx_hash(2)
        assert replaced.hashes == (tx_hash(1), tx_hash(2))
        assert replaced.replacements == 1
        assert replaced.fees == Fees(34 * 10**9, 2 * 10**9)
        assert (replaced.sent_at, replaced.first_sent_at) == (1012.0, 1000.0)
        assert state.is_locked(a)
        # Either hash finds the transaction (the old one may be the one that gets mined).
        found = state.pending_by_hash(tx_hash(1).upper().replace("0X", "0x"))
        assert found is not None and found.nonce == 3
        with pytest.raises(UnknownPendingError):
            state.replace_pending(SIGNER, 4, tx_hash(9), Fees(1, 1), 1.0)


def test_bind__other_deployment__refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    with KeeperState(path) as state:
        state.bind(31337, ENGINE)
    with KeeperState(path) as state:
        with pytest.raises(StateMismatchError, match="chain 31337"):
            state.bind(1, ENGINE)
        with pytest.raises(StateMismatchError):
            state.bind(31337, "0x" + "12" * 20)
        state.bind(31337, ENGINE.upper().replace("0X", "0x"))  # same engine, other spelling


def test_invalid_inputs__refused() -> None:
    with KeeperState(":memory:") as state:
        with pytest.raises(ValueError):
            state.add_accounts([("0x1234", 1)])
        with pytest.raises(ValueError):
            state.record_pending(PendingTx(SIGNER, 0, "0xnothash", (), Fees(1, 1), 1.0, 1.0))
