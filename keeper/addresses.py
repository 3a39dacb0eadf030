"""Ethereum address normalisation shared by the keeper modules."""

from __future__ import annotations

from eth_utils.address import is_address, to_checksum_address

__all__ = ["InvalidAddressError", "normalize_address"]


class InvalidAddressError(ValueError):
    """Raised when a value is not a 20-byte hex Ethereum address."""


def normalize_address(value: str) -> str:
    """Return ``value`` as an EIP-55 checksummed address.

    Accepts lower-case, upper-case or checksummed hex with the ``0x`` prefix. A mixed-case
    address with a wrong checksum is refused, since it is most likely a typo.

    :raises InvalidAddressError: if ``value`` is not a valid address.
    """
    if not isinstance(value, str) or not is_address(value):
        raise InvalidAddressError(f"not an Ethereum address: {value!r}")
    return to_checksum_address(value)
