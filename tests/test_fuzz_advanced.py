"""The advanced-margin fuzz machine (tests/fuzz/advanced.py): isolated positions, margin moves,
funding, the volatility term and poke, and the risk timelock, with model-free invariants after
every step. Profile from BALLAST_FUZZ like tests/test_fuzz.py: `ci` (default) runs 100 examples of
30 steps, `long` (`make fuzz`) 2,000 of 50."""

import os

from fuzz.advanced import N_TRADERS, AdvancedWorld, report, run_advanced
from fuzz.machine import profile
from fuzz.protocol import Deployment, Protocol
from fuzz.rpc import Node

MAX_UINT = 2**256 - 1


def abi_of(container) -> list:
    return container.contract_type.model_dump(mode="json", by_alias=True)["abi"]


def test_advanced_margin_fuzz(project, chain, adv, deployer, traders, lp, liquidator):
    env = adv
    for who, usd, spender in [*((t, 10_000_000, env.engine) for t in traders[:N_TRADERS]), (lp, 10_000_000, env.pool)]:
        env.mint(who, usd)
        env.token.approve(spender.address, MAX_UINT, sender=who)
    env.mint(liquidator, 100_000)
    env.token.approve(env.engine.address, MAX_UINT, sender=liquidator)
    env.engine.fund_insurance(env.units(50_000), sender=liquidator)
    d = Deployment(
        engine=env.engine.address.lower(),
        config=env.config.address.lower(),
        pool=env.pool.address.lower(),
        token=env.token.address.lower(),
        feeds=tuple(f.address.lower() for f in env.feeds),
        feed_owner=deployer.address.lower(),
        traders=tuple(t.address.lower() for t in traders[:N_TRADERS]),
        keeper=liquidator.address.lower(),
        lp=lp.address.lower(),
    )
    abis = {
        "engine": abi_of(project.MarginEngine),
        "config": abi_of(project.RiskConfig),
        "pool": abi_of(project.RiskPool),
        "token": abi_of(project.MockUSDC),
        "feed": abi_of(project.MockAggregator),
    }
    protocol = Protocol(Node(chain.provider.uri), abis, d, flat=False)
    world = AdvancedWorld(protocol, answers=[f.latestRoundData()[1] for f in env.feeds], owner=deployer.address.lower())
    name, examples, steps = profile()
    seed = os.environ.get("BALLAST_FUZZ_SEED")
    try:
        run_advanced(world, examples, steps, int(seed) if seed else None)
    finally:
        print("\n" + report(world, f"advanced fuzz ({name}: {examples} x {steps})", steps))
    assert world.stats["liquidate_many"] + world.stats["liquidate"] > 0
