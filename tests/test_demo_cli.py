"""scripts/demo.py refuses bad input with a clear message before it starts anything."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def _demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DEMO), *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "window file not found"),
        ("timestamp,open,high,low\n0,1,1,1\n", "header lacks close"),
        ("timestamp,open,high,low,close\n0,1,1,1,1\n3600,2,1,1,1\n", "line 3: inconsistent candle"),
    ],
)
def test_bad_window__exit_2_with_the_reason(tmp_path: Path, content: str | None, message: str) -> None:
    window = tmp_path / "w.csv"
    if content is not None:
        window.write_text(content)
    r = _demo("--window", str(window), "--out", str(tmp_path / "out"))
    assert r.returncode == 2, r.stdout + r.stderr
    assert message in r.stdout and "Traceback" not in r.stdout + r.stderr
    assert not (tmp_path / "out").exists()  # nothing started, nothing written


def test_bad_counts__exit_2(tmp_path: Path) -> None:
    r = _demo("--traders", "0", "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "--traders must be at least 1" in r.stdout
    r = _demo("--candles", "0", "--out", str(tmp_path / "out"))
    assert r.returncode == 2 and "--candles must be at least 1" in r.stdout
