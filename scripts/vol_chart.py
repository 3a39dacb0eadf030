"""`ape run vol_chart --network ethereum:local:foundry`: how sigma and the maintenance fraction move
through a real crash, computed by the contract's own volatility module (through a harness, in one
call), for docs/volatility.md and its chart."""

import sys
from datetime import datetime, timezone
from pathlib import Path

import click
from ape import accounts, project
from ape.cli import ConnectedProviderCommand

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _deploy import ROOT  # noqa: E402
from _replay import feed_updates, path_points, read_candles  # noqa: E402

WAD = 10**18


@click.command(cls=ConnectedProviderCommand)
@click.option("--window", default=str(ROOT / "scripts" / "data" / "eth_usd_1h_2020-03-11_black_thursday.csv"))
@click.option("--tau", default=4 * 3600, help="EWMA time constant, seconds")
@click.option("--z", default=3.0, help="multiplier of sigma")
@click.option("--horizon", default=3600, help="seconds")
@click.option("--mmf", default=0.05, help="the market's bracket maintenance fraction, for comparison")
@click.option("--out", default=str(ROOT / "docs"))
def cli(network, window, tau, z, horizon, mmf, out):
    """Replay a window through the volatility module; write a table and a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ups = feed_updates(path_points(read_candles(window)))
    prices = [int(u.price * 10**8) * 10**10 for u in ups]
    times = [u.timestamp for u in ups]
    harness = accounts.test_accounts[0].deploy(project.VolatilityHarness)
    variances, mmfs = harness.replay(prices, times, tau, int(z * WAD), horizon)
    vol = [m / WAD for m in mmfs]
    eff = [max(mmf, v) for v in vol]
    hourly_sigma = [(v / WAD * 3600) ** 0.5 for v in variances]

    name = Path(window).stem
    out_dir = Path(out)
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True)
    when = [datetime.fromtimestamp(t, tz=timezone.utc) for t in times]
    ax1.plot(when, [p / WAD for p in prices], lw=1)
    ax1.set_ylabel("ETH/USD (feed answers)")
    ax1.set_title(f"{name}: {len(ups)} feed answers; tau {tau // 3600} h, z {z}, horizon {horizon // 60} min")
    ax2.plot(when, [100 * v for v in vol], lw=1, label="z * sigma * sqrt(horizon)")
    ax2.plot(when, [100 * e for e in eff], lw=1.5, label=f"effective mmf = max({100 * mmf:.0f}%, vol)")
    ax2.set_ylabel("maintenance fraction, %")
    ax2.legend(loc="upper left")
    fig.autofmt_xdate()
    fig.tight_layout()
    png = out_dir / f"volatility_{name}.png"
    fig.savefig(png, dpi=110)

    rows = []
    last_hour = None
    for t, p, s, v, e in zip(times, prices, hourly_sigma, vol, eff):
        hour = t // (6 * 3600)
        if hour != last_hour:
            last_hour = hour
            stamp = datetime.fromtimestamp(t, tz=timezone.utc).strftime("%m-%d %H:%M")
            rows.append(f"| {stamp} | {p / WAD:,.2f} | {100 * s:.2f}% | {100 * v:.2f}% | {100 * e:.2f}% |")
    peak = max(range(len(vol)), key=vol.__getitem__)
    table = "\n".join(
        [
            f"### {name}",
            "",
            f"![sigma and maintenance fraction]({png.name})",
            "",
            f"Peak: {100 * vol[peak]:.2f}% at {datetime.fromtimestamp(times[peak], tz=timezone.utc):%m-%d %H:%M} UTC "
            f"(price {prices[peak] / WAD:,.2f}); end of window: {100 * vol[-1]:.2f}%.",
            "",
            "| time (UTC) | price | sigma, 1 h | vol mmf | effective mmf |",
            "| --- | ---: | ---: | ---: | ---: |",
            *rows,
            "",
        ]
    )
    (out_dir / f"volatility_{name}.md").write_text(table)
    click.echo(table)
    click.echo(f"wrote {png} and {out_dir / f'volatility_{name}.md'}")
