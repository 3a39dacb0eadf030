"""Ballast liquidation keeper.

The package is split by concern. The modules below are pure (no chain, no network) and are unit
tested without a node:

- :mod:`keeper.settings`: typed configuration (flags over ``BALLAST_*`` environment over TOML) and
  the deployment file loader.
- :mod:`keeper.ranking`: the local margin model of each account and risk ranking.
- :mod:`keeper.batching`: splitting liquidations into transactions under a gas cap.
- :mod:`keeper.fees`: EIP-1559 fees and replacement bumps.
- :mod:`keeper.profit`: whether a batch's reward pays for its gas.
- :mod:`keeper.ranges`: log scanning in block ranges that shrink when the provider refuses them.
- :mod:`keeper.state`: the SQLite state (checkpoint, accounts, pending transactions and locks).
- :mod:`keeper.shard`: splitting accounts between several keeper instances.
- :mod:`keeper.report`: the ``scan`` table.
- :mod:`keeper.cli`: the ``ballast-keeper`` command line.
- :mod:`keeper.units` and :mod:`keeper.addresses`: WAD and address normalisation.

The chain side, tested against a real anvil:

- :mod:`keeper.abi`: the minimal engine ABI the keeper uses, with fast decoders (checked against the
  compiled contract by a test; no build artifacts needed at run time).
- :mod:`keeper.rpc`: batched JSON-RPC over web3.py's providers, retries with backoff, failover.
- :mod:`keeper.engine`: typed, batched reads of the engine (prices, account list, models,
  ``healths``, sweeps, ``liquidate_many`` simulation, events).
- :mod:`keeper.signer`: Ape account alias, keystore file, or a raw key on a local chain.
- :mod:`keeper.sender`: nonces, EIP-1559 fees, locks, receipts, replacement and cancellation.
- :mod:`keeper.metrics` and :mod:`keeper.jsonlog`: Prometheus ``/metrics`` + ``/healthz``, JSON logs.
- :mod:`keeper.runner`: start-up checks, discovery, the per-block pass and the main loop.
- :mod:`keeper.localchain`: anvil and bulk trader set-up for tests and the benchmark (not used by
  the running keeper).

Modules import from each other by full name (``keeper.units``, ...), never from this file, so the
package also works when an old editable install registered ``keeper`` as a namespace package.
"""
