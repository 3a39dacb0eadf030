"""Log scanning in block ranges that shrink when the provider refuses them."""

from __future__ import annotations

import pytest

from keeper.ranges import ChunkSizer, RangeRefused, scan_ranges


class RangeTooLarge(Exception):
    """What the fake provider raises for a span over its limit."""


class FakeProvider:
    """Refuses ``[a, b]`` spans over ``limit`` blocks and records every call."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.calls: list[tuple[int, int]] = []
        self.refused: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> list[int]:
        self.calls.append((start, end))
        if self.limit is not None and end - start + 1 > self.limit:
            self.refused.append((start, end))
            raise RangeTooLarge(f"query returned more than 10000 results ({start}-{end})")
        return list(range(start, end + 1))  # one "log" per block, to check coverage


def test_scan__provider_refusing_over_1000__covers_every_block_once_in_order() -> None:
    provider = FakeProvider(limit=1000)
    got = list(scan_ranges(100, 12_345, provider, sizer=ChunkSizer(5000)))
    blocks = [b for r in got for b in r.result]
    assert blocks == list(range(100, 12_346))  # no gap, no overlap, in order
    assert got[0].start == 100 and got[-1].end == 12_345
    for prev, nxt in zip(got, got[1:], strict=False):
        assert nxt.start == prev.end + 1
    assert all(r.end - r.start + 1 <= 1000 for r in got)
    assert provider.refused  # it did shrink
    # Three halvings from 5000 to 625, then at most one refused probe per growth step.
    assert len(provider.refused) <= 3 + (len(got) - 3) // 3


def test_scan__long_scan__homes_in_on_the_limit() -> None:
    calls: list[int] = []
    refused: list[int] = []

    def provider(start: int, end: int) -> tuple[int, int]:
        calls.append(end - start + 1)
        if end - start + 1 > 1000:
            refused.append(end - start + 1)
            raise RangeTooLarge()
        return start, end

    got = list(scan_ranges(0, 999_999, provider, sizer=ChunkSizer(5000)))
    assert got[0].result[0] == 0 and got[-1].result[1] == 999_999
    assert all(b.start == a.end + 1 for a, b in zip(got, got[1:], strict=False))
    assert len(refused) < 0.15 * len(calls)  # refused probes stay rare
    assert len(got) < 1.1 * 1000  # and chunks stay close to the limit


def test_scan__halves_the_refused_range_and_retries_the_same_start() -> None:
    provider = FakeProvider(limit=1000)
    list(scan_ranges(0, 3999, provider, sizer=ChunkSizer(4000)))
    assert provider.calls[:4] == [(0, 3999), (0, 1999), (0, 999), (1000, 1999)]


def test_scan__grows_back_after_successes() -> None:
    provider = FakeProvider(limit=1000)
    sizer = ChunkSizer(4000, grow_after=2, forget_after=3)
    list(scan_ranges(0, 2999, provider, sizer=sizer))  # learns 1000
    assert sizer.chunk <= 1000
    provider.limit = None  # the provider relents
    got = list(scan_ranges(3000, 60_000, provider, sizer=sizer))
    sizes = [r.end - r.start + 1 for r in got]
    assert sizes == sorted(sizes[:-1]) + sizes[-1:]  # never shrinks without a refusal
    assert max(sizes) == 4000  # back to the maximum, not beyond
    assert sizes[0] < 4000  # gradually, not at once


def test_scan__single_block_refused__raises_with_the_cause() -> None:
    provider = FakeProvider(limit=0)
    with pytest.raises(RangeRefused) as info:
        list(scan_ranges(10, 20, provider, sizer=ChunkSizer(8)))
    assert info.value.block == 10
    assert isinstance(info.value.__cause__, RangeTooLarge)


def test_scan__other_errors__propagate_without_shrinking() -> None:
    calls: list[tuple[int, int]] = []

    def broken(start: int, end: int) -> None:
        calls.append((start, end))
        raise ConnectionError("node down")

    with pytest.raises(ConnectionError):
        list(scan_ranges(0, 100, broken, is_refusal=lambda e: isinstance(e, RangeTooLarge)))
    assert len(calls) == 1


def test_scan__empty_span__fetches_nothing() -> None:
    provider = FakeProvider(limit=None)
    assert list(scan_ranges(10, 9, provider)) == []
    assert provider.calls == []


def test_scan__is_lazy__caller_can_checkpoint_each_range() -> None:
    provider = FakeProvider(limit=None)
    it = scan_ranges(0, 9999, provider, sizer=ChunkSizer(1000))
    first = next(it)
    assert (first.start, first.end) == (0, 999)
    assert provider.calls == [(0, 999)]


@pytest.mark.parametrize("kwargs", [{"initial": 0}, {"grow_after": 0}])
def test_sizer__bad_arguments__refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ChunkSizer(**kwargs)
