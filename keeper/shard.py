"""Splitting accounts between several keeper instances (``--shard k/n``).

Shards are numbered from 1: ``--shard 1/3``, ``--shard 2/3`` and ``--shard 3/3`` together cover
every account exactly once. ``1/1`` (the default) is a single keeper watching everything.

The assignment depends only on the address, so it is stable across restarts and identical in
every instance: account ``a`` belongs to shard ``int(a) % n + 1``. Addresses are hashes, so their
low bits spread accounts evenly.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from keeper.addresses import normalize_address

__all__ = ["Shard", "ShardSpecError", "parse_shard", "shard_of", "filter_shard"]

_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardSpecError(ValueError):
    """Raised for a malformed ``k/n`` shard specification."""


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based) out of ``count``."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ShardSpecError(f"shard count must be at least 1, got {self.count}")
        if not 1 <= self.index <= self.count:
            raise ShardSpecError(
                f"shard index must be between 1 and {self.count}, got {self.index}"
            )

    def owns(self, address: str) -> bool:
        """Whether ``address`` belongs to this shard."""
        return shard_of(address, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def parse_shard(spec: str | Shard) -> Shard:
    """Parse ``"k/n"`` (1 <= k <= n) into a :class:`Shard`.

    :raises ShardSpecError: with a readable message if ``spec`` is malformed.
    """
    if isinstance(spec, Shard):
        return spec
    match = _SPEC.match(str(spec))
    if match is None:
        raise ShardSpecError(f"shard must look like k/n, for example 1/2, got {spec!r}")
    return Shard(index=int(match.group(1)), count=int(match.group(2)))


def shard_of(address: str, count: int) -> int:
    """The 1-based shard of ``address`` among ``count`` shards."""
    if count < 1:
        raise ShardSpecError(f"shard count must be at least 1, got {count}")
    return int(normalize_address(address), 16) % count + 1


def filter_shard(addresses: Iterable[str], shard: Shard) -> list[str]:
    """The addresses of ``addresses`` that ``shard`` owns, in their original order."""
    return [a for a in addresses if shard.owns(a)]
