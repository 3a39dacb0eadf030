"""The real `ballast-keeper`, as a subprocess, liquidates a crash on the fork (chain id 1, so the
signer is a keystore file: a raw key is refused off local chains)."""

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

from eth_account import Account

from _deploy import write_deployment
from helpers import ETH
from test_fork_liquidation import _open_leveraged_long

KEEPER = str(Path(sys.executable).parent / "ballast-keeper")


def test_keeper_subprocess__liquidates_the_crash_and_skips_the_healthy(env, chain, deployer, trader, trader2, tmp_path):
    p0 = env.engine.price(ETH)
    _open_leveraged_long(env, trader, 2_000, 6)
    _open_leveraged_long(env, trader2, 20_000, 1)
    env.set_price(ETH, Decimal(p0) / 10**18 * Decimal("0.85"))
    assert env.engine.health(trader.address).liquidatable
    assert not env.engine.health(trader2.address).liquidatable

    deployment = write_deployment(env.record, tmp_path)
    account = Account.create()  # a fresh signer, funded with gas money on the fork
    deployer.transfer(account.address, 10**18)
    keystore = tmp_path / "keeper.json"
    keystore.write_text(json.dumps(Account.encrypt(account.key, "pw")))
    (tmp_path / "pw").write_text("pw")
    signer = account.address
    before = env.token.balanceOf(signer)

    out = subprocess.run(
        [
            KEEPER, "run", "--once",
            "--rpc-url", chain.provider.uri,
            "--deployment", str(deployment),
            "--keystore", str(keystore),
            "--password-file", str(tmp_path / "pw"),
            "--state-db", str(tmp_path / "state.sqlite"),
            "--metrics-port", "0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={k: v for k, v in os.environ.items() if not k.startswith("BALLAST_")},
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert env.engine.position_mask(trader.address) == 0 or not env.engine.health(trader.address).liquidatable
    assert env.engine.position(trader2.address, ETH).size > 0  # the healthy one untouched
    assert env.token.balanceOf(signer) > before  # the keeper was paid in real USDC
