"""The keeper's signing key: an Ape account alias, a keystore file, or a raw key (local only).

Every source ends as a :class:`Signer` that signs EIP-1559 transaction dicts locally with
eth-account. An Ape alias is resolved with Ape's own ``accounts.load``; a keyfile account is then
decrypted once (passphrase from ``--password-file``, Ape's ``APE_ACCOUNTS_<alias>_PASSPHRASE``, or
a prompt on a terminal), any other Ape account type (a hardware wallet plugin) signs through Ape.
The raw ``BALLAST_PRIVATE_KEY`` is only accepted on chain ids 31337 and 1337; the settings check
the configured chain id, and :func:`load_signer` checks the node's.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from eth_account import Account

from keeper.addresses import normalize_address
from keeper.settings import LOCAL_CHAIN_IDS, KeeperSettings, env_name

__all__ = ["SignerError", "Signer", "SignedTx", "LocalSigner", "load_signer", "read_password"]


class SignerError(ValueError):
    """The key cannot be loaded; the message says why without echoing secrets."""


@dataclass(frozen=True)
class SignedTx:
    raw: str
    """``0x``-prefixed serialized transaction."""
    hash: str
    """``0x``-prefixed transaction hash."""


class Signer(Protocol):
    address: str
    label: str

    def sign(self, tx: dict[str, Any]) -> SignedTx: ...


class LocalSigner:
    """Signs with a private key held in memory."""

    def __init__(self, key: bytes | str, label: str) -> None:
        self._account = Account.from_key(key)
        self.address = normalize_address(self._account.address)
        self.label = label

    def sign(self, tx: dict[str, Any]) -> SignedTx:
        signed = self._account.sign_transaction(tx)
        return SignedTx(raw="0x" + bytes(signed.raw_transaction).hex(), hash="0x" + bytes(signed.hash).hex())

    def __repr__(self) -> str:  # never the key
        return f"LocalSigner({self.address}, {self.label})"


class ApeAccountSigner:
    """Signs through an Ape account that does not expose a keyfile (e.g. a hardware wallet)."""

    def __init__(self, account: Any, alias: str) -> None:
        self._account = account
        self.address = normalize_address(str(account.address))
        self.label = f"ape:{alias}"

    def sign(self, tx: dict[str, Any]) -> SignedTx:
        from ape import networks  # imported only for this rare path

        txn = networks.ethereum.create_transaction(**_ape_fields(tx))
        signed = self._account.sign_transaction(txn)
        if signed is None:
            raise SignerError(f"Ape account {self.label} declined to sign")
        raw = signed.serialize_transaction()
        from eth_utils import keccak

        return SignedTx(raw="0x" + bytes(raw).hex(), hash="0x" + keccak(raw).hex())


def _ape_fields(tx: dict[str, Any]) -> dict[str, Any]:
    return {
        "chainId": tx["chainId"],
        "nonce": tx["nonce"],
        "receiver": tx["to"],
        "value": tx.get("value", 0),
        "data": tx.get("data", "0x"),
        "gas": tx["gas"],
        "maxFee": tx["maxFeePerGas"],
        "maxPriorityFee": tx["maxPriorityFeePerGas"],
        "type": 2,
    }


def read_password(path: Path) -> str:
    """A password file's content without the trailing newline."""
    try:
        return path.read_text(encoding="utf-8").rstrip("\r\n")
    except OSError as exc:
        raise SignerError(f"cannot read password file {path}: {exc.strerror}") from None


def _decrypt(keyfile: dict[str, Any], password: str, what: str) -> bytes:
    try:
        return bytes(Account.decrypt(keyfile, password))
    except ValueError as exc:
        if "MAC" in str(exc) or "password" in str(exc).lower():
            raise SignerError(f"cannot decrypt {what}: wrong password") from None
        raise SignerError(f"cannot decrypt {what}: {exc}") from None
    except (KeyError, TypeError) as exc:
        raise SignerError(f"{what} is not an Ethereum keystore (missing {exc})") from None


def _from_keystore(path: Path, password_file: Path) -> LocalSigner:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SignerError(f"cannot read keystore {path}: {exc}") from None
    if not isinstance(data, dict) or "crypto" not in {k.lower() for k in data}:
        raise SignerError(f"{path} is not an Ethereum keystore file")
    key = _decrypt(data, read_password(password_file), f"keystore {path}")
    return LocalSigner(key, f"keystore:{path.name}")


def _from_alias(alias: str, password_file: Path | None) -> Signer:
    try:
        from ape import accounts as ape_accounts
    except ImportError:  # pragma: no cover - ape is a dependency of the project
        raise SignerError("--account-alias needs eth-ape installed") from None
    try:
        account = ape_accounts.load(alias)
    except Exception:  # noqa: BLE001 - Ape raises its own error types
        raise SignerError(
            f"no Ape account with alias {alias!r} (see `ape accounts list`; "
            "import one with `ape accounts import <alias>`)"
        ) from None
    keyfile = getattr(account, "keyfile", None)
    if not isinstance(keyfile, dict):
        return ApeAccountSigner(account, alias)
    if password_file is not None:
        password = read_password(password_file)
    elif f"APE_ACCOUNTS_{alias}_PASSPHRASE" in os.environ:
        password = os.environ[f"APE_ACCOUNTS_{alias}_PASSPHRASE"]
    elif sys.stdin.isatty():
        import click

        password = click.prompt(f"Passphrase of Ape account '{alias}'", hide_input=True)
    else:
        raise SignerError(
            f"no passphrase for Ape account {alias!r}: pass --password-file or set "
            f"APE_ACCOUNTS_{alias}_PASSPHRASE"
        )
    return LocalSigner(_decrypt(keyfile, password, f"Ape account {alias!r}"), f"ape:{alias}")


def load_signer(settings: KeeperSettings, chain_id: int) -> Signer | None:
    """The configured signer, or ``None`` when no key source is set.

    :param chain_id: the node's chain id (a raw key is refused unless it is a local chain).
    :raises SignerError: with a message for the operator.
    """
    kind = settings.signer_kind
    if kind is None:
        return None
    if kind == "raw":
        if chain_id not in LOCAL_CHAIN_IDS:
            raise SignerError(
                f"a raw private key ({env_name('private_key')}) is only accepted on a local chain "
                f"(chain id {sorted(LOCAL_CHAIN_IDS)}), but the node is chain {chain_id}"
            )
        assert settings.private_key is not None
        return LocalSigner(settings.private_key.get_secret_value(), "environment")
    if kind == "keystore":
        assert settings.keystore is not None and settings.password_file is not None
        return _from_keystore(settings.keystore, settings.password_file)
    assert settings.account_alias is not None
    return _from_alias(settings.account_alias, settings.password_file)
