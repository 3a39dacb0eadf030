"""The stateful fuzz machine (tests/fuzz/) over a deployment made by the deploy script's own code.

Profile from BALLAST_FUZZ: `ci` (default, 100 examples of 30 steps) or `long` (`make fuzz`, 2,000
examples of 50 steps); BALLAST_FUZZ_EXAMPLES, BALLAST_FUZZ_STEPS and BALLAST_FUZZ_SEED override.
A failure prints the shrunk list of steps, each with what the engine did.
"""

import os

from fuzz.machine import N_MARKETS, N_TRADERS, World, profile, run
from fuzz.protocol import Deployment, Protocol
from fuzz.rpc import Node

MAX_UINT = 2**256 - 1


def abi_of(container) -> list:
    return container.contract_type.model_dump(mode="json", by_alias=True)["abi"]


def test_protocol_fuzz(project, chain, env, deployer, traders, lp, liquidator):
    assert len(traders) == N_TRADERS and len(env.feeds) == N_MARKETS
    for who, usd, spender in [*((t, 10_000_000, env.engine) for t in traders), (liquidator, 1_000_000, env.engine), (lp, 10_000_000, env.pool)]:
        env.mint(who, usd)
        env.token.approve(spender.address, MAX_UINT, sender=who)
    env.engine.fund_insurance(env.units(20_000), sender=liquidator)  # a fund to pay bad debt from
    d = Deployment(
        engine=env.engine.address.lower(),
        config=env.config.address.lower(),
        pool=env.pool.address.lower(),
        token=env.token.address.lower(),
        feeds=tuple(f.address.lower() for f in env.feeds),
        feed_owner=deployer.address.lower(),
        traders=tuple(t.address.lower() for t in traders),
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
    world = World(Protocol(Node(chain.provider.uri), abis, d), answers=[f.latestRoundData()[1] for f in env.feeds])
    name, examples, steps = profile()
    seed = os.environ.get("BALLAST_FUZZ_SEED")
    try:
        run(world, examples, steps, int(seed) if seed else None)
    finally:
        print("\n" + world.stats.report(f"fuzz ({name}: {examples} x {steps})"))
