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

Modules import from each other by full name (``keeper.units``, ...), never from this file, so the
package also works when an old editable install registered ``keeper`` as a namespace package.
"""
