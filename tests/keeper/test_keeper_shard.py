"""Splitting accounts between keeper instances."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from keeper.shard import Shard, ShardSpecError, filter_shard, parse_shard, shard_of


@pytest.mark.parametrize(
    "spec, expected", [("1/1", Shard(1, 1)), ("2/3", Shard(2, 3)), (" 3 / 3 ", Shard(3, 3))]
)
def test_parse__valid(spec: str, expected: Shard) -> None:
    assert parse_shard(spec) == expected
    assert str(expected) == f"{expected.index}/{expected.count}"


@pytest.mark.parametrize("spec", ["0/2", "3/2", "1/0", "1", "a/b", "-1/2", "1/2/3", ""])
def test_parse__invalid__readable_error(spec: str) -> None:
    with pytest.raises(ShardSpecError, match="shard"):
        parse_shard(spec)


@pytest.mark.parametrize("count", [1, 2, 3, 5, 8])
def test_assignment__every_address_in_exactly_one_shard(
    count: int, make_addresses: Callable[..., list[str]]
) -> None:
    addresses = make_addresses(2000, count)
    shards = [Shard(k, count) for k in range(1, count + 1)]
    owners: Counter[str] = Counter()
    for shard in shards:
        for address in filter_shard(addresses, shard):
            owners[address] += 1
    assert set(owners) == set(addresses)
    assert set(owners.values()) == {1}
    # Addresses are hashes: the split is even (within 20% of a fair share for 2000 addresses).
    sizes = Counter(shard_of(a, count) for a in addresses)
    assert all(abs(n - 2000 / count) <= 0.2 * 2000 / count for n in sizes.values())


def test_assignment__stable_and_case_insensitive(make_addresses: Callable[..., list[str]]) -> None:
    for address in make_addresses(50, 9):
        assert shard_of(address, 7) == shard_of(address.lower(), 7) == int(address, 16) % 7 + 1


def test_assignment__invalid_address__refused() -> None:
    with pytest.raises(ValueError):
        shard_of("0x1234", 2)
