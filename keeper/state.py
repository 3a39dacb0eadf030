"""The keeper's persistent state in SQLite.

What is kept, and why:

- the **checkpoint**: the last block whose events were scanned, saved in the same transaction as the
  accounts found up to it, so a restart continues from it without a gap or a lost account;
- the **known accounts** with the block where each was first seen;
- the **pending transactions** of the signer (nonce, every hash sent for it, fees, times, accounts)
  so a restart can wait for, replace or cancel them;
- the **account locks**: an account is locked by the pending transaction that contains it, and a
  second transaction for a locked account is refused atomically.

The file is bound to one deployment (chain id and engine address) on first use, so a state file is
never silently reused against another deployment.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from keeper.addresses import normalize_address
from keeper.fees import Fees

__all__ = [
    "SCHEMA_VERSION",
    "StateError",
    "StateMismatchError",
    "AccountsLockedError",
    "NonceInUseError",
    "UnknownPendingError",
    "KnownAccount",
    "PendingTx",
    "KeeperState",
]

SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    address TEXT PRIMARY KEY,
    first_seen_block INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending_txs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sender TEXT NOT NULL,
    nonce INTEGER NOT NULL,
    tx_hash TEXT NOT NULL,
    max_fee_per_gas TEXT NOT NULL,
    max_priority_fee_per_gas TEXT NOT NULL,
    first_sent_at REAL NOT NULL,
    sent_at REAL NOT NULL,
    UNIQUE (sender, nonce)
);
CREATE TABLE IF NOT EXISTS tx_hashes (
    tx_hash TEXT PRIMARY KEY,
    pending_id INTEGER NOT NULL REFERENCES pending_txs(id) ON DELETE CASCADE,
    attempt INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS account_locks (
    address TEXT PRIMARY KEY,
    pending_id INTEGER NOT NULL REFERENCES pending_txs(id) ON DELETE CASCADE,
    position INTEGER NOT NULL
);
"""


class StateError(Exception):
    """Base class of state errors."""


class StateMismatchError(StateError):
    """The state file belongs to another deployment, or to a newer schema."""


class AccountsLockedError(StateError):
    """Some accounts of a new transaction are already in a pending one."""

    def __init__(self, accounts: list[str]) -> None:
        super().__init__(f"accounts already in a pending transaction: {', '.join(accounts)}")
        self.accounts = accounts


class NonceInUseError(StateError):
    """A pending transaction already uses this sender and nonce (replace it instead)."""


class UnknownPendingError(StateError):
    """No pending transaction for this sender and nonce."""


@dataclass(frozen=True)
class KnownAccount:
    """An account the keeper tracks and the block where it was first seen."""

    address: str
    first_seen_block: int


@dataclass(frozen=True)
class PendingTx:
    """A sent transaction that is not yet final.

    :param hashes: every hash sent for this nonce, oldest first; ``tx_hash`` is the latest.
    """

    sender: str
    nonce: int
    tx_hash: str
    accounts: tuple[str, ...]
    fees: Fees
    sent_at: float
    first_sent_at: float
    hashes: tuple[str, ...] = ()

    @property
    def replacements(self) -> int:
        """How many times the transaction was replaced."""
        return max(0, len(self.hashes) - 1)


def _hash(value: str) -> str:
    text = value.lower()
    if not text.startswith("0x"):
        text = "0x" + text
    if len(text) != 66 or any(c not in "0123456789abcdef" for c in text[2:]):
        raise ValueError(f"not a transaction hash: {value!r}")
    return text


class KeeperState:
    """SQLite-backed keeper state. Safe to reopen: everything is committed as it happens.

    :param path: database file (created with its directory), or ``":memory:"``.
    """

    def __init__(self, path: str | Path, *, check_same_thread: bool = True) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(
                self.path, isolation_level=None, timeout=10.0, check_same_thread=check_same_thread
            )
            self._db.execute("PRAGMA foreign_keys = ON")
            if self.path != ":memory:":
                self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            raise StateError(f"cannot open keeper state {self.path}: {exc}") from exc
        version = self._meta("schema_version")
        if version is None:
            self._set_meta("schema_version", str(SCHEMA_VERSION))
        elif int(version) > SCHEMA_VERSION:
            raise StateMismatchError(
                f"{self.path} has schema version {version}; this keeper knows {SCHEMA_VERSION}"
            )

    # -- lifecycle --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the database connection."""
        self._db.close()

    def __enter__(self) -> KeeperState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def _set_meta(self, key: str, value: str, db: sqlite3.Connection | None = None) -> None:
        (db or self._db).execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- deployment binding -----------------------------------------------------------------

    def bind(self, chain_id: int, engine: str) -> None:
        """Tie the file to a deployment on first use; refuse a different one later.

        :raises StateMismatchError: if the file was bound to another chain id or engine.
        """
        engine = normalize_address(engine)
        with self._transaction() as db:
            stored_chain = self._meta("chain_id")
            stored_engine = self._meta("engine")
            if stored_chain is None and stored_engine is None:
                self._set_meta("chain_id", str(chain_id), db)
                self._set_meta("engine", engine, db)
                return
        if stored_chain != str(chain_id) or stored_engine != engine:
            raise StateMismatchError(
                f"state file {self.path} belongs to chain {stored_chain}, engine {stored_engine}; "
                f"this run is chain {chain_id}, engine {engine}. Use another --state-db."
            )

    # -- checkpoint and accounts ------------------------------------------------------------

    def checkpoint(self) -> int | None:
        """The last scanned block, or ``None`` before the first scan."""
        value = self._meta("checkpoint")
        return None if value is None else int(value)

    def save_checkpoint(self, block: int, *, rewind: bool = False) -> None:
        """Set the last scanned block.

        :param rewind: allow moving the checkpoint back (after a reorg); otherwise refused.
        :raises ValueError: for a negative block or an unrequested move backwards.
        """
        with self._transaction() as db:
            self._save_checkpoint(db, block, rewind)

    def _save_checkpoint(self, db: sqlite3.Connection, block: int, rewind: bool) -> None:
        if block < 0:
            raise ValueError("block must not be negative")
        current = self.checkpoint()
        if current is not None and block < current and not rewind:
            raise ValueError(f"checkpoint would move back from {current} to {block}")
        self._set_meta("checkpoint", str(block), db)

    def _add_accounts(self, db: sqlite3.Connection, items: Iterable[tuple[str, int]]) -> int:
        before = db.total_changes
        db.executemany(
            "INSERT INTO accounts (address, first_seen_block) VALUES (?, ?) "
            "ON CONFLICT (address) DO UPDATE SET first_seen_block = "
            "min(first_seen_block, excluded.first_seen_block) "
            "WHERE excluded.first_seen_block < first_seen_block",
            [(normalize_address(a), int(b)) for a, b in items],
        )
        return db.total_changes - before

    def add_accounts(self, items: Iterable[tuple[str, int]]) -> int:
        """Add ``(address, block)`` pairs; returns how many rows were added or moved earlier."""
        with self._transaction() as db:
            return self._add_accounts(db, items)

    def record_scan(self, to_block: int, items: Iterable[tuple[str, int]] = ()) -> int:
        """Atomically add the accounts found in a scanned range and advance the checkpoint.

        :returns: how many account rows were added or moved earlier.
        """
        with self._transaction() as db:
            changed = self._add_accounts(db, items)
            self._save_checkpoint(db, to_block, rewind=False)
            return changed

    def accounts(self) -> list[str]:
        """Known addresses (checksummed), in the order they were first seen."""
        rows = self._db.execute(
            "SELECT address FROM accounts ORDER BY first_seen_block, address"
        ).fetchall()
        return [r[0] for r in rows]

    def known_accounts(self) -> list[KnownAccount]:
        """Known accounts with their first-seen block, in that order."""
        rows = self._db.execute(
            "SELECT address, first_seen_block FROM accounts ORDER BY first_seen_block, address"
        ).fetchall()
        return [KnownAccount(address=a, first_seen_block=b) for a, b in rows]

    def account_count(self) -> int:
        """How many accounts are known."""
        return int(self._db.execute("SELECT count(*) FROM accounts").fetchone()[0])

    # -- pending transactions and locks -----------------------------------------------------

    def record_pending(self, tx: PendingTx) -> None:
        """Record a new transaction and lock its accounts, all or nothing.

        Call it after signing and before broadcasting: if it raises, do not send.

        :raises AccountsLockedError: if any account is already in a pending transaction (or
            repeated within ``tx``).
        :raises NonceInUseError: if the sender already has a pending transaction at that nonce.
        """
        sender = normalize_address(tx.sender)
        accounts = [normalize_address(a) for a in tx.accounts]
        repeated = sorted({a for a in accounts if accounts.count(a) > 1})
        if repeated:
            raise AccountsLockedError(repeated)
        tx_hash = _hash(tx.tx_hash)
        with self._transaction() as db:
            marks = ",".join("?" * len(accounts))
            locked = (
                [
                    r[0]
                    for r in db.execute(
                        f"SELECT address FROM account_locks WHERE address IN ({marks})", accounts
                    ).fetchall()
                ]
                if accounts
                else []
            )
            if locked:
                raise AccountsLockedError(sorted(locked))
            try:
                cur = db.execute(
                    "INSERT INTO pending_txs (sender, nonce, tx_hash, max_fee_per_gas, "
                    "max_priority_fee_per_gas, first_sent_at, sent_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        sender,
                        tx.nonce,
                        tx_hash,
                        str(tx.fees.max_fee_per_gas),
                        str(tx.fees.max_priority_fee_per_gas),
                        tx.first_sent_at,
                        tx.sent_at,
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise NonceInUseError(
                    f"{sender} already has a pending transaction at nonce {tx.nonce}"
                ) from exc
            pending_id = cur.lastrowid
            db.execute(
                "INSERT INTO tx_hashes (tx_hash, pending_id, attempt) VALUES (?, ?, 0)",
                (tx_hash, pending_id),
            )
            db.executemany(
                "INSERT INTO account_locks (address, pending_id, position) VALUES (?, ?, ?)",
                [(a, pending_id, i) for i, a in enumerate(accounts)],
            )

    def replace_pending(
        self, sender: str, nonce: int, new_hash: str, fees: Fees, sent_at: float
    ) -> PendingTx:
        """Record a replacement (same nonce, new hash and fees); the locks stay in place.

        :raises UnknownPendingError: if nothing is pending at ``(sender, nonce)``.
        """
        sender = normalize_address(sender)
        new_hash = _hash(new_hash)
        with self._transaction() as db:
            row = db.execute(
                "SELECT id FROM pending_txs WHERE sender = ? AND nonce = ?", (sender, nonce)
            ).fetchone()
            if row is None:
                raise UnknownPendingError(f"nothing pending for {sender} at nonce {nonce}")
            pending_id = row[0]
            attempt = db.execute(
                "SELECT count(*) FROM tx_hashes WHERE pending_id = ?", (pending_id,)
            ).fetchone()[0]
            db.execute(
                "INSERT INTO tx_hashes (tx_hash, pending_id, attempt) VALUES (?, ?, ?)",
                (new_hash, pending_id, attempt),
            )
            db.execute(
                "UPDATE pending_txs SET tx_hash = ?, max_fee_per_gas = ?, "
                "max_priority_fee_per_gas = ?, sent_at = ? WHERE id = ?",
                (
                    new_hash,
                    str(fees.max_fee_per_gas),
                    str(fees.max_priority_fee_per_gas),
                    sent_at,
                    pending_id,
                ),
            )
        found = self.get_pending(sender, nonce)
        assert found is not None
        return found

    def resolve_pending(self, sender: str, nonce: int) -> PendingTx | None:
        """Forget the transaction at ``(sender, nonce)`` (mined, dropped or cancelled) and
        release its accounts. Returns what was pending, or ``None``."""
        found = self.get_pending(sender, nonce)
        if found is None:
            return None
        with self._transaction() as db:
            db.execute(
                "DELETE FROM pending_txs WHERE sender = ? AND nonce = ?",
                (normalize_address(sender), nonce),
            )
        return found

    def _load_pending(self, where: str, args: tuple[object, ...]) -> list[PendingTx]:
        rows = self._db.execute(
            "SELECT id, sender, nonce, tx_hash, max_fee_per_gas, max_priority_fee_per_gas, "
            f"sent_at, first_sent_at FROM pending_txs {where} ORDER BY sender, nonce",
            args,
        ).fetchall()
        result = []
        for pid, sender, nonce, tx_hash, max_fee, tip, sent_at, first_sent_at in rows:
            accounts = tuple(
                r[0]
                for r in self._db.execute(
                    "SELECT address FROM account_locks WHERE pending_id = ? ORDER BY position",
                    (pid,),
                )
            )
            hashes = tuple(
                r[0]
                for r in self._db.execute(
                    "SELECT tx_hash FROM tx_hashes WHERE pending_id = ? ORDER BY attempt", (pid,)
                )
            )
            result.append(
                PendingTx(
                    sender=sender,
                    nonce=nonce,
                    tx_hash=tx_hash,
                    accounts=accounts,
                    fees=Fees(int(max_fee), int(tip)),
                    sent_at=sent_at,
                    first_sent_at=first_sent_at,
                    hashes=hashes,
                )
            )
        return result

    def get_pending(self, sender: str, nonce: int) -> PendingTx | None:
        """The pending transaction at ``(sender, nonce)``, if any."""
        found = self._load_pending(
            "WHERE sender = ? AND nonce = ?", (normalize_address(sender), nonce)
        )
        return found[0] if found else None

    def pending(self, sender: str | None = None) -> list[PendingTx]:
        """Pending transactions, by sender then nonce; only ``sender``'s when given."""
        if sender is None:
            return self._load_pending("", ())
        return self._load_pending("WHERE sender = ?", (normalize_address(sender),))

    def pending_by_hash(self, tx_hash: str) -> PendingTx | None:
        """The pending transaction that any of its attempts' hashes identifies."""
        row = self._db.execute(
            "SELECT p.sender, p.nonce FROM tx_hashes h JOIN pending_txs p ON p.id = h.pending_id "
            "WHERE h.tx_hash = ?",
            (_hash(tx_hash),),
        ).fetchone()
        return None if row is None else self.get_pending(row[0], row[1])

    def locked_accounts(self) -> set[str]:
        """Accounts currently in a pending transaction (checksummed)."""
        return {r[0] for r in self._db.execute("SELECT address FROM account_locks")}

    def is_locked(self, address: str) -> bool:
        """Whether ``address`` is in a pending transaction."""
        row = self._db.execute(
            "SELECT 1 FROM account_locks WHERE address = ?", (normalize_address(address),)
        ).fetchone()
        return row is not None
