"""Log scanning in block ranges that shrink when the provider refuses them.

Providers limit ``eth_getLogs`` by block span or by result count, and say so with an error. The
planner asks for ``[start, end]`` in chunks; when a chunk is refused it halves the chunk (down to a
single block) and retries the same start; after a run of successes it grows the chunk again,
gradually, never above ``max_chunk`` and, for a while, not back to a size that was refused (see
:class:`ChunkSizer`). The logic is pure: the caller passes the function that fetches one range, so
it is tested with a fake provider.

Ranges come back in order and together cover ``[start, end]`` exactly once, so the caller can save
its checkpoint after each one and a restart continues without a gap.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["RangeRefused", "ScannedRange", "ChunkSizer", "scan_ranges"]

T = TypeVar("T")


class RangeRefused(Exception):
    """The provider refused even a single-block range; the original error is ``__cause__``."""

    def __init__(self, block: int, cause: BaseException) -> None:
        super().__init__(f"provider refused the single-block range {block}: {cause}")
        self.block = block


@dataclass(frozen=True)
class ScannedRange(Generic[T]):
    """One fetched range ``[start, end]`` (inclusive) and what the fetch returned."""

    start: int
    end: int
    result: T


class ChunkSizer:
    """Adaptive chunk size.

    - On a refused range of ``size`` blocks: retry with ``size // 2``, but not below the largest
      size that worked since the last refusal of a smaller one (it is known to pass).
    - After ``grow_after`` successes in a row: grow by half, but only halfway towards the smallest
      refused size, so the chunk homes in on the provider's limit instead of bouncing off it.
    - After ``forget_after`` successes without a refusal, the refused size is forgotten and growth
      may probe up to ``max_chunk`` again (limits by result count change with log density).

    :param initial: first chunk size in blocks.
    :param max_chunk: upper bound (defaults to ``initial``).
    """

    def __init__(
        self,
        initial: int = 2_000,
        *,
        max_chunk: int | None = None,
        grow_after: int = 3,
        forget_after: int = 50,
    ) -> None:
        if initial < 1:
            raise ValueError("initial chunk must be at least 1 block")
        if grow_after < 1:
            raise ValueError("grow_after must be at least 1")
        self.max_chunk = max(initial, max_chunk or initial)
        self.chunk = initial
        self.grow_after = grow_after
        self.forget_after = forget_after
        self._streak = 0
        self._since_refusal = 0
        self._ceiling: int | None = None
        self._floor = 0

    def on_success(self, size: int) -> None:
        """Record a fetched range of ``size`` blocks; may grow the chunk."""
        self._floor = max(self._floor, size)
        self._streak += 1
        self._since_refusal += 1
        if self._ceiling is not None and self._since_refusal >= self.forget_after:
            self._ceiling = None
        if self._streak < self.grow_after:
            return
        self._streak = 0
        target = self.chunk + max(1, self.chunk // 2)
        if self._ceiling is not None:
            target = min(target, (self.chunk + self._ceiling) // 2)
        self.chunk = max(self.chunk, min(self.max_chunk, target))

    def on_refused(self, size: int) -> bool:
        """Record a refused range of ``size`` blocks; ``False`` if it cannot shrink any more."""
        self._streak = 0
        self._since_refusal = 0
        self._ceiling = size if self._ceiling is None else min(self._ceiling, size)
        if size <= 1:
            return False
        if self._floor >= size:
            self._floor = 0  # what worked before does not work here (denser logs)
        self.chunk = max(size // 2, self._floor)
        return True


def _always(_: Exception) -> bool:
    return True


def scan_ranges(
    start: int,
    end: int,
    fetch: Callable[[int, int], T],
    *,
    sizer: ChunkSizer | None = None,
    is_refusal: Callable[[Exception], bool] = _always,
) -> Iterator[ScannedRange[T]]:
    """Fetch ``[start, end]`` (inclusive) in adaptive chunks, yielding each range in order.

    :param fetch: called as ``fetch(from_block, to_block)``; raising an exception for which
        ``is_refusal`` is true makes the planner shrink and retry; other exceptions propagate.
    :param sizer: chunk policy (a fresh :class:`ChunkSizer` by default); pass one in to keep the
        learned size between calls.
    :raises RangeRefused: if a single block is refused.
    """
    sizer = sizer or ChunkSizer()
    cursor = start
    while cursor <= end:
        stop = min(end, cursor + sizer.chunk - 1)
        try:
            result = fetch(cursor, stop)
        except Exception as exc:  # noqa: BLE001 - the predicate decides
            if not is_refusal(exc):
                raise
            if not sizer.on_refused(stop - cursor + 1):
                raise RangeRefused(cursor, exc) from exc
            continue
        sizer.on_success(stop - cursor + 1)
        yield ScannedRange(start=cursor, end=stop, result=result)
        cursor = stop + 1
