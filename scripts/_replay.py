"""Turns hourly candles into the answers a Chainlink feed would have published.

A feed publishes a new answer when the price has moved by the deviation threshold (0.5% for
ETH/USD) from its last answer, and at least once per heartbeat (one hour) otherwise. Within an hour
the candle gives four points: the open, then the low and the high in the order that fits the candle
(a candle that closes below its open is taken to have made its high first), then the close. The
path between points is linear in time; the replayer looks at it every second and publishes the
price it sees when it has moved by the threshold, and a heartbeat answer when an hour passes
without one.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

DEVIATION = Decimal("0.005")
HEARTBEAT = 3600


@dataclass(frozen=True)
class Candle:
    timestamp: int  # candle open, unix seconds
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal


@dataclass(frozen=True)
class Update:
    timestamp: int
    price: Decimal
    reason: str  # "start", "deviation" or "heartbeat"


COLUMNS = ("timestamp", "open", "high", "low", "close")


def read_candles(path: str | Path) -> list[Candle]:
    """Reads a CSV of the shared format (comment lines starting with #, then a header with at least
    the columns timestamp, open, high, low, close; one candle a line, in time order).

    :raises ValueError: naming the file, the line and what is wrong with it.
    """
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"window file not found: {p}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"{p}: cannot read it as text: {e}") from None
    numbered = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip() and not line.startswith("#")]
    if not numbered:
        raise ValueError(f"{p}: no header and no candles")
    header = [h.strip() for h in next(csv.reader([numbered[0][1]]))]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{p}: line {numbered[0][0]}: header lacks {', '.join(missing)} (expected {','.join(COLUMNS)})")
    out: list[Candle] = []
    for n, line in numbered[1:]:
        values = next(csv.reader([line]))
        if len(values) != len(header):
            raise ValueError(f"{p}: line {n}: {len(values)} fields, the header has {len(header)}")
        row = dict(zip(header, (v.strip() for v in values)))
        try:
            c = Candle(int(row["timestamp"]), *(Decimal(row[k]) for k in ("open", "high", "low", "close")))
        except (ValueError, ArithmeticError):
            raise ValueError(f"{p}: line {n}: not a candle (integer timestamp, then numbers): {line}") from None
        if not all(x.is_finite() for x in (c.open, c.high, c.low, c.close)):
            raise ValueError(f"{p}: line {n}: prices must be finite numbers: {line}")
        if not (c.low <= min(c.open, c.close) and c.high >= max(c.open, c.close) and c.low > 0):
            raise ValueError(f"{p}: line {n}: inconsistent candle at {c.timestamp} (needs 0 < low <= open, close <= high): {line}")
        if out and c.timestamp <= out[-1].timestamp:
            raise ValueError(f"{p}: line {n}: candle at {c.timestamp} is not after the one before ({out[-1].timestamp})")
        out.append(c)
    if not out:
        raise ValueError(f"{p}: no candles")
    return out


def candle_points(c: Candle, period: int = 3600) -> list[tuple[int, Decimal]]:
    """The candle's path: open, the two extremes in the order that fits, and the close one second
    before the next candle opens (so a gap between close and next open stays a jump)."""
    first, second = (c.high, c.low) if c.close < c.open else (c.low, c.high)
    step = period // 3
    return [(c.timestamp, c.open), (c.timestamp + step, first), (c.timestamp + 2 * step, second), (c.timestamp + period - 1, c.close)]


def path_points(candles: list[Candle], period: int = 3600) -> list[tuple[int, Decimal]]:
    """All candles' points in time order; candles must be in order and not overlap."""
    pts: list[tuple[int, Decimal]] = []
    for c in candles:
        for t, p in candle_points(c, period):
            if pts and t <= pts[-1][0]:
                raise ValueError(f"candles out of order or overlapping at {c.timestamp}")
            pts.append((t, p))
    return pts


def feed_updates(points: list[tuple[int, Decimal]], deviation: Decimal = DEVIATION, heartbeat: int = HEARTBEAT) -> list[Update]:
    """The answers a deviation-and-heartbeat feed publishes along a piecewise-linear path.

    The feed looks at the path once a second (it cannot answer more often than a block) and
    publishes the price it sees when that price is at least `deviation` away from its last answer,
    or when `heartbeat` seconds have passed since it; a jump is published as the new price.
    """
    dev = float(deviation)
    t0, p0 = points[0]
    out = [Update(t0, p0, "start")]
    last_t, last_p = t0, float(p0)
    for (ta, pa), (tb, pb) in zip(points, points[1:]):
        fa, fb = float(pa), float(pb)
        slope = (fb - fa) / (tb - ta)
        for t in range(max(ta, last_t + 1), tb + 1):
            p = fa + slope * (t - ta)
            if abs(p / last_p - 1) >= dev:
                out.append(Update(t, Decimal(repr(p)), "deviation"))
            elif t - last_t >= heartbeat:
                out.append(Update(t, Decimal(repr(p)), "heartbeat"))
            else:
                continue
            last_t, last_p = t, p
    return out
