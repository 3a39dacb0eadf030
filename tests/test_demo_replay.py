"""The crash demo end to end on a short window: its own anvil, the deploy script, a small book, the
real keeper as a subprocess, and the report's invariants.

The window is synthetic so that it holds every case in a few candles: a fall in half-percent steps
(partial liquidations), a 17% gap between two candles (underwater accounts: bad debt), then a
rally (short accounts). The insurance fund starts nearly empty, so part of the bad debt reaches the
pool and that goal is missed: the report must say by how much.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import _crash  # noqa: E402
import _report  # noqa: E402

CANDLES = """# synthetic: a fall, a gap down, a rally
timestamp,open,high,low,close
0,200,201,199,200
3600,200,200,184,185
7200,154,156,150,152
10800,152,171,151,170
14400,170,171,169,170
"""
CENT = 0.005


@pytest.fixture(scope="module")
def outcome(tmp_path_factory) -> tuple[_crash.Outcome, Path]:
    d = tmp_path_factory.mktemp("demo")
    window = d / "synthetic_gap.csv"
    window.write_text(CANDLES)
    settings = _crash.DemoSettings(window=window, traders=40, seed=7, insurance_usd=100, workdir=d)
    seen: list[_crash.Progress] = []
    out = _crash.run(settings, seen.append)
    out.figures["wall_seconds"] = 0.0
    assert seen and seen[-1].update == seen[-1].updates == out.figures["oracle_updates"]
    return out, d


def test_report__every_key_present_and_written(outcome) -> None:
    out, d = outcome
    f = out.figures
    goal_list = _report.goals(f)
    doc = _report.document(f, goal_list, out.timeline, out.liquidations)
    assert list(doc)[: len(_report.KEYS)] == list(_report.KEYS)
    _report.write_json(d / "r.json", doc)
    _report.chart(d / "r.png", f, out.timeline, out.liquidations)
    assert json.loads((d / "r.json").read_text())["window"] == "synthetic_gap"
    assert (d / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f["traders"] == 40 and f["oracle_updates"] == len(out.timeline)
    assert f["keeper_exit_code"] == 0


def test_keeper__liquidated_everything_within_one_block(outcome) -> None:
    f = outcome[0].figures
    assert f["accounts_became_liquidatable"] > 0 and f["liquidations_partial"] > 0 and f["liquidations_full"] > 0
    assert f["accounts_liquidated"] == f["accounts_became_liquidatable"]
    assert f["spells_not_ended_by_liquidation"] == 0
    assert f["max_delay_blocks"] <= 1
    assert f["left_liquidatable_after_update"] == 0
    assert f["other_liquidators"] == 0 and f["keeper_transactions"] > 0 and f["keeper_gas"] > 0
    assert f["keeper_rewards_usd"] > 0


def test_bad_debt__all_of_it_accounted_for(outcome) -> None:
    f = outcome[0].figures
    assert f["bad_debt_usd"] > 0  # the gap left accounts underwater
    assert f["bad_debt_usd"] == pytest.approx(f["bad_debt_insurance_paid_usd"] + f["bad_debt_to_pool_usd"], abs=CENT)
    # the fund moves by the penalties it keeps, the rewards the pool covered for it and the bad debt
    # it paid (plus sub-cent rests of rewards paid in whole tokens)
    change = f["insurance_end_usd"] - f["insurance_start_usd"]
    expected = f["penalty_income_usd"] + f["insurance_shortfall_usd"] - f["bad_debt_insurance_paid_usd"]
    assert change == pytest.approx(expected, abs=CENT)


def test_goals__the_missed_one_says_by_how_much(outcome) -> None:
    f = outcome[0].figures
    assert f["bad_debt_to_pool_usd"] > CENT  # the fund started with $100
    goals = {g["goal"]: g for g in _report.goals(f)}
    pool = goals["no bad debt reaching the pool"]
    assert not pool["met"] and f"${f['bad_debt_to_pool_usd']:,.2f} written off against the pool" in pool["detail"]
    assert goals["no account left liquidatable more than one block after the update that made it so"]["met"]


def test_timeline__chain_time_follows_the_answers(outcome) -> None:
    timeline = outcome[0].timeline
    base = timeline[0]["chain_time"] - timeline[0]["t"]
    for e in timeline:
        # block time = answer time, but for the seconds of the blocks mined after an update while
        # the keeper liquidates, when the next answer comes sooner than that
        assert 0 <= e["chain_time"] - e["t"] - base <= _crash.DemoSettings().settle_blocks
    assert all(b["t"] - a["t"] <= 3600 for a, b in zip(timeline, timeline[1:]))  # heartbeat
