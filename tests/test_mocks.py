"""The testing mocks behave like the real tokens and feeds they stand in for."""

import ape
import pytest

from fixtures_oracle import (  # noqa: F401  (fixtures are used by name)
    keeper,
    make_feed,
    sanctioned,
)

BLACKLISTED = "Blacklistable: account is blacklisted"
ZERO_ADDRESS = "0x" + "00" * 20


@pytest.fixture
def usdt(project, deployer):
    return project.MockUSDT.deploy(sender=deployer)


@pytest.fixture
def usdc(project, deployer):
    return project.MockUSDC.deploy(sender=deployer)


# --- MockAggregator ------------------------------------------------------------------------


def test_aggregator__metadata__matches_constructor(make_feed):
    feed = make_feed(8, 3_000 * 10**8, "ETH / USD")
    assert feed.decimals() == 8
    assert feed.description() == "ETH / USD"
    assert feed.version() == 4
    assert feed.latest_round() == 1


def test_aggregator__initial_round__is_stamped_with_deploy_time(make_feed, chain):
    feed = make_feed(8, 3_000 * 10**8)
    round_id, answer, started_at, updated_at, answered_in = feed.latestRoundData()
    deployed_at = chain.blocks.head.timestamp
    assert (round_id, answer, started_at, updated_at, answered_in) == (1, 3_000 * 10**8, deployed_at, deployed_at, 1)


def test_aggregator__set_answer__opens_round_stamped_now(make_feed, trader, chain):
    feed = make_feed(8)
    tx = feed.set_answer(2_900 * 10**8, sender=trader)  # anyone may move the mock
    now = chain.blocks[tx.block_number].timestamp
    assert feed.latestRoundData() == (2, 2_900 * 10**8, now, now, 2)
    assert feed.latest_round() == 2
    logs = tx.decode_logs(feed.AnswerUpdated)
    assert [(log.current, log.round_id, log.updated_at) for log in logs] == [(2_900 * 10**8, 2, now)]


def test_aggregator__set_round__uses_explicit_time_for_started_and_updated(make_feed, trader):
    feed = make_feed(0, 0)
    feed.set_round(1, 1_234, sender=trader)
    assert feed.latestRoundData() == (2, 1, 1_234, 1_234, 2)


def test_aggregator__get_round_data__replays_every_round(make_feed, deployer, chain):
    feed = make_feed(8, 100)
    first_at = chain.blocks.head.timestamp
    feed.set_round(200, 5_000, sender=deployer)
    feed.set_round(-300, 0, sender=deployer)
    tx = feed.set_answer(400, sender=deployer)
    last_at = chain.blocks[tx.block_number].timestamp
    assert feed.getRoundData(1) == (1, 100, first_at, first_at, 1)
    assert feed.getRoundData(2) == (2, 200, 5_000, 5_000, 2)
    assert feed.getRoundData(3) == (3, -300, 0, 0, 3)
    assert feed.getRoundData(4) == (4, 400, last_at, last_at, 4)
    assert feed.latestRoundData() == feed.getRoundData(4)


@pytest.mark.parametrize("round_id", [0, 2, 2**80 - 1])
def test_aggregator__get_round_data_unknown_round__reverts(make_feed, round_id):
    feed = make_feed(8)
    with ape.reverts("aggregator: no data"):
        feed.getRoundData(round_id)


def test_aggregator__broken__reverts_latest_until_repaired(make_feed, deployer):
    feed = make_feed(8, 42)
    feed.set_broken(True, sender=deployer)
    with ape.reverts("aggregator: broken"):
        feed.latestRoundData()
    feed.set_broken(False, sender=deployer)
    assert feed.latestRoundData()[1] == 42


# --- MockERC20 -----------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [6, 8, 18])
def test_erc20__anyone_mints_and_standard_transfers_work(project, deployer, trader, lp, keeper, decimals):
    token = project.MockERC20.deploy("Mock Token", "MOCK", decimals, sender=deployer)
    unit = 10**decimals
    assert (token.name(), token.symbol(), token.decimals()) == ("Mock Token", "MOCK", decimals)

    token.mint(trader, 100 * unit, sender=keeper)
    assert token.balanceOf(trader) == 100 * unit
    assert token.totalSupply() == 100 * unit

    assert token.transfer.call(lp, 10 * unit, sender=trader) is True
    token.transfer(lp, 10 * unit, sender=trader)
    token.approve(keeper, 30 * unit, sender=trader)
    token.transferFrom(trader, lp, 20 * unit, sender=keeper)
    assert token.balanceOf(trader) == 70 * unit
    assert token.balanceOf(lp) == 30 * unit
    assert token.allowance(trader, keeper) == 10 * unit


def test_erc20__transfer_beyond_balance__reverts(project, deployer, trader, lp):
    token = project.MockERC20.deploy("Mock Token", "MOCK", 18, sender=deployer)
    token.mint(trader, 5, sender=trader)
    with ape.reverts("erc20: transfer amount exceeds balance"):
        token.transfer(lp, 6, sender=trader)


# --- MockUSDT ------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["transfer", "approve"])
def test_usdt__transfer_and_approve__return_no_data(usdt, chain, trader, lp, method):
    usdt.mint(trader, 10**6, sender=trader)
    txn = getattr(usdt, method).as_transaction(lp, 10**6, sender=trader)
    assert chain.provider.send_call(txn) == b""


def test_usdt__transfer_from__returns_no_data(usdt, chain, trader, lp, keeper):
    usdt.mint(trader, 10**6, sender=trader)
    usdt.approve(keeper, 10**6, sender=trader)
    txn = usdt.transferFrom.as_transaction(trader, lp, 10**6, sender=keeper)
    assert chain.provider.send_call(txn) == b""


def test_usdc__transfer__returns_true_word_unlike_usdt(usdc, chain, trader, lp):
    usdc.mint(trader, 10**6, sender=trader)
    txn = usdc.transfer.as_transaction(lp, 10**6, sender=trader)
    assert chain.provider.send_call(txn) == (1).to_bytes(32, "big")


def test_usdt__transfers_move_balances(usdt, trader, lp, keeper):
    assert usdt.decimals() == 6
    usdt.mint(trader, 1_000 * 10**6, sender=keeper)
    usdt.transfer(lp, 100 * 10**6, sender=trader)
    usdt.approve(keeper, 300 * 10**6, sender=trader)
    usdt.transferFrom(trader, lp, 200 * 10**6, sender=keeper)
    assert usdt.balanceOf(trader) == 700 * 10**6
    assert usdt.balanceOf(lp) == 300 * 10**6
    assert usdt.allowance(trader, keeper) == 100 * 10**6
    assert usdt.totalSupply() == 1_000 * 10**6


def test_usdt__transfer_beyond_balance__reverts(usdt, trader, lp):
    usdt.mint(trader, 10, sender=trader)
    with ape.reverts("usdt: insufficient balance"):
        usdt.transfer(lp, 11, sender=trader)


def test_usdt__transfer_from_beyond_allowance__reverts(usdt, trader, lp, keeper):
    usdt.mint(trader, 100, sender=trader)
    usdt.approve(keeper, 10, sender=trader)
    with ape.reverts("usdt: insufficient allowance"):
        usdt.transferFrom(trader, lp, 11, sender=keeper)


# --- MockUSDC ------------------------------------------------------------------------------


def test_usdc__blacklist__is_recorded_and_lifted(usdc, deployer, sanctioned):
    assert usdc.decimals() == 6
    assert usdc.is_blacklisted(sanctioned) is False
    usdc.blacklist(sanctioned, sender=deployer)
    assert usdc.is_blacklisted(sanctioned) is True
    usdc.unblacklist(sanctioned, sender=deployer)
    assert usdc.is_blacklisted(sanctioned) is False


def test_usdc__transfer_to_blacklisted__reverts(usdc, deployer, trader, sanctioned):
    usdc.mint(trader, 100, sender=deployer)
    usdc.blacklist(sanctioned, sender=deployer)
    with ape.reverts(BLACKLISTED):
        usdc.transfer(sanctioned, 1, sender=trader)


def test_usdc__transfer_from_blacklisted__reverts(usdc, deployer, lp, sanctioned):
    usdc.mint(sanctioned, 100, sender=deployer)
    usdc.blacklist(sanctioned, sender=deployer)
    with ape.reverts(BLACKLISTED):
        usdc.transfer(lp, 1, sender=sanctioned)


def test_usdc__transfer_from_of_blacklisted_owner__reverts(usdc, deployer, lp, keeper, sanctioned):
    usdc.mint(sanctioned, 100, sender=deployer)
    usdc.approve(keeper, 100, sender=sanctioned)
    usdc.blacklist(sanctioned, sender=deployer)
    with ape.reverts(BLACKLISTED):
        usdc.transferFrom(sanctioned, lp, 1, sender=keeper)


def test_usdc__transfer_from_to_blacklisted__reverts(usdc, deployer, trader, keeper, sanctioned):
    usdc.mint(trader, 100, sender=deployer)
    usdc.approve(keeper, 100, sender=trader)
    usdc.blacklist(sanctioned, sender=deployer)
    with ape.reverts(BLACKLISTED):
        usdc.transferFrom(trader, sanctioned, 1, sender=keeper)


def test_usdc__transfer_from_by_blacklisted_spender__reverts(usdc, deployer, trader, lp, sanctioned):
    usdc.mint(trader, 100, sender=deployer)
    usdc.approve(sanctioned, 100, sender=trader)
    usdc.blacklist(sanctioned, sender=deployer)
    with ape.reverts(BLACKLISTED):
        usdc.transferFrom(trader, lp, 1, sender=sanctioned)


def test_usdc__approve_by_blacklisted__reverts(usdc, deployer, keeper, sanctioned):
    usdc.blacklist(sanctioned, sender=deployer)
    with ape.reverts(BLACKLISTED):
        usdc.approve(keeper, 1, sender=sanctioned)


def test_usdc__mint_to_blacklisted__reverts(usdc, deployer, sanctioned):
    usdc.blacklist(sanctioned, sender=deployer)
    with ape.reverts(BLACKLISTED):
        usdc.mint(sanctioned, 1, sender=deployer)


def test_usdc__unblacklisted_account__can_transfer_again(usdc, deployer, lp, sanctioned):
    usdc.mint(sanctioned, 100, sender=deployer)
    usdc.blacklist(sanctioned, sender=deployer)
    usdc.unblacklist(sanctioned, sender=deployer)
    usdc.transfer(lp, 40, sender=sanctioned)
    assert usdc.balanceOf(lp) == 40
    assert usdc.balanceOf(sanctioned) == 60


def test_usdc__transfer_beyond_balance__reverts(usdc, deployer, trader, lp):
    usdc.mint(trader, 10, sender=deployer)
    with ape.reverts("usdc: insufficient balance"):
        usdc.transfer(lp, 11, sender=trader)


# --- MockFeeToken --------------------------------------------------------------------------


@pytest.mark.parametrize("decimals", [6, 18])
def test_fee_token__transfer__burns_one_percent(project, deployer, trader, lp, decimals):
    token = project.MockFeeToken.deploy(decimals, sender=deployer)
    unit = 10**decimals
    assert token.decimals() == decimals
    token.mint(trader, 1_000 * unit, sender=deployer)
    tx = token.transfer(lp, 100 * unit, sender=trader)
    assert token.balanceOf(trader) == 900 * unit
    assert token.balanceOf(lp) == 99 * unit
    assert token.totalSupply() == 999 * unit
    moves = [(log.sender, log.receiver, log.value) for log in tx.decode_logs(token.Transfer)]
    assert moves == [(trader.address, lp.address, 99 * unit), (trader.address, ZERO_ADDRESS, unit)]


@pytest.mark.parametrize("decimals", [6, 18])
def test_fee_token__transfer_from__burns_one_percent_and_spends_full_allowance(
    project, deployer, trader, lp, keeper, decimals
):
    token = project.MockFeeToken.deploy(decimals, sender=deployer)
    unit = 10**decimals
    token.mint(trader, 1_000 * unit, sender=deployer)
    token.approve(keeper, 500 * unit, sender=trader)
    token.transferFrom(trader, lp, 200 * unit, sender=keeper)
    assert token.balanceOf(trader) == 800 * unit
    assert token.balanceOf(lp) == 198 * unit
    assert token.allowance(trader, keeper) == 300 * unit
    assert token.totalSupply() == 998 * unit


def test_fee_token__fee_rounds_down(project, deployer, trader, lp):
    token = project.MockFeeToken.deploy(6, sender=deployer)
    token.mint(trader, 1_000, sender=deployer)
    token.transfer(lp, 199, sender=trader)  # fee 1.99 -> 1
    assert token.balanceOf(lp) == 198
    token.transfer(lp, 99, sender=trader)  # fee 0.99 -> 0
    assert token.balanceOf(lp) == 198 + 99


def test_fee_token__transfer_beyond_balance__reverts(project, deployer, trader, lp):
    token = project.MockFeeToken.deploy(18, sender=deployer)
    token.mint(trader, 10, sender=deployer)
    with ape.reverts("fee token: insufficient balance"):
        token.transfer(lp, 11, sender=trader)
