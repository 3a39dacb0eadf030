# pragma version ~=0.4.3
"""
@title Ballast Chainlink oracle adapter
@custom:contract-name ChainlinkOracle
@license MIT
@notice Reads one Chainlink AggregatorV3 feed and returns its answer as a WAD
        (18-decimal) price, rejecting stale, future, zero-time and non-positive
        answers. On an L2 it can also check the Chainlink sequencer uptime feed
        and refuse prices while the sequencer is down or within a grace period
        after it came back up.
@dev `price()` is on the engine's hot path (every trade and liquidation): all
     configuration is immutable, so it costs no SLOAD, only the feed calls.
     `latest()` is for keepers and screens and never reverts.
@custom:kill Nothing can be stopped: the adapter has no owner and no state.
             To retire a feed, governance points the market at a new adapter.
"""


from interfaces import IOracle
implements: IOracle


# INTERFACES #


# @dev The part of Chainlink's AggregatorV3Interface this adapter reads.
interface AggregatorV3:
    def decimals() -> uint8: view
    def latestRoundData() -> (uint80, int256, uint256, uint256, uint80): view


# CONSTANTS #


# @dev The number of decimals of the returned price.
_WAD_DECIMALS: constant(uint8) = 18

# @dev The largest feed precision supported (10**18 scale factor either way).
_MAX_FEED_DECIMALS: constant(uint8) = 36

# @dev ABI size of the five static words returned by `latestRoundData()`.
_ROUND_DATA_SIZE: constant(uint256) = 160


# IMMUTABLES #


# @dev The Chainlink price feed.
feed: public(immutable(address))

# @dev The longest accepted age of an answer, in seconds.
heartbeat: public(immutable(uint256))

# @dev The L2 sequencer uptime feed; empty(address) disables the check.
sequencer_feed: public(immutable(address))

# @dev Seconds after the sequencer comes back up during which prices are refused.
grace_period: public(immutable(uint256))

# @dev The feed's decimals, cached at deployment.
feed_decimals: public(immutable(uint8))

# @dev True when the answer is multiplied by `_SCALE`, False when divided.
_SCALE_UP: immutable(bool)

# @dev 10 ** |18 - feed_decimals|.
_SCALE: immutable(uint256)


@deploy
def __init__(feed_: address, heartbeat_: uint256, sequencer_feed_: address, grace_period_: uint256):
    """
    @notice Binds the adapter to a feed and caches its decimals.
    @dev Reverts with "oracle: zero feed", "oracle: zero heartbeat" or, for a
         feed with more than 36 decimals, "oracle: decimals".
    @param feed_ The Chainlink AggregatorV3 price feed.
    @param heartbeat_ The longest accepted answer age, in seconds.
    @param sequencer_feed_ The L2 sequencer uptime feed, or empty(address) for none.
    @param grace_period_ Seconds after a sequencer restart during which prices
           are refused (unused without a sequencer feed).
    """
    assert feed_ != empty(address), "oracle: zero feed"
    assert heartbeat_ != 0, "oracle: zero heartbeat"
    decimals_: uint8 = staticcall AggregatorV3(feed_).decimals()
    assert decimals_ <= _MAX_FEED_DECIMALS, "oracle: decimals"

    feed = feed_
    heartbeat = heartbeat_
    sequencer_feed = sequencer_feed_
    grace_period = grace_period_
    feed_decimals = decimals_
    _SCALE_UP = decimals_ <= _WAD_DECIMALS
    gap: uint256 = convert(decimals_, uint256)
    if _SCALE_UP:
        gap = convert(_WAD_DECIMALS, uint256) - gap
    else:
        gap = gap - convert(_WAD_DECIMALS, uint256)
    _SCALE = 10 ** gap


@external
@view
def price() -> uint256:
    """
    @notice The validated feed price, WAD USD per whole base unit.
    @dev Checks, in order: the sequencer (if configured), the answer, its age.
         Reverts with "oracle: sequencer down" (sequencer answer != 0),
         "oracle: grace period" (sequencer up for <= grace_period seconds),
         "oracle: invalid answer" (answer <= 0) or "oracle: stale" (updatedAt
         zero, in the future, or more than heartbeat seconds old). A feed
         that reverts makes this revert with the feed's reason.
    @return uint256 The price with 18 decimals.
    """
    if sequencer_feed != empty(address):
        seq_round: uint80 = 0
        status: int256 = 0
        started_at: uint256 = 0
        seq_updated_at: uint256 = 0
        seq_answered_in: uint80 = 0
        seq_round, status, started_at, seq_updated_at, seq_answered_in = staticcall AggregatorV3(
            sequencer_feed
        ).latestRoundData()
        # dev: Chainlink reports startedAt == 0 for an invalid round: treat as down
        assert status == 0 and started_at != 0, "oracle: sequencer down"
        assert started_at <= block.timestamp and block.timestamp - started_at > grace_period, "oracle: grace period"

    round_id: uint80 = 0
    answer: int256 = 0
    started: uint256 = 0
    updated_at: uint256 = 0
    answered_in: uint80 = 0
    round_id, answer, started, updated_at, answered_in = staticcall AggregatorV3(feed).latestRoundData()
    assert answer > 0, "oracle: invalid answer"
    # dev: the future check comes first, so the unchecked subtraction cannot wrap
    assert updated_at != 0 and updated_at <= block.timestamp and unsafe_sub(block.timestamp, updated_at) <= heartbeat, "oracle: stale"

    if _SCALE_UP:
        # dev: checked: an absurd answer (> ~1e59 at 8 decimals) reverts here
        return convert(answer, uint256) * _SCALE
    return unsafe_div(convert(answer, uint256), _SCALE)


@external
@view
def latest() -> (uint256, uint256, bool):
    """
    @notice The feed price with its update time and whether `price()` would
            accept it. Never reverts, for keepers and screens.
    @dev When ok is False the price and time are still the feed's (scaled)
         values where it returned any, so a screen can show a stale price;
         price is 0 for a non-positive or unscalable answer, and both are 0
         when the feed call fails or returns malformed data.
    @return uint256 The price with 18 decimals (see dev note).
    @return uint256 The feed's updatedAt.
    @return bool True exactly when `price()` would return this price.
    """
    ok: bool = True

    if sequencer_feed != empty(address):
        seq_ok: bool = False
        status: int256 = 0
        started_at: uint256 = 0
        seq_updated_at: uint256 = 0
        seq_ok, status, started_at, seq_updated_at = self._read(sequencer_feed)
        if not seq_ok or status != 0 or started_at == 0 or started_at > block.timestamp:
            ok = False
        elif block.timestamp - started_at <= grace_period:
            ok = False

    read_ok: bool = False
    answer: int256 = 0
    started: uint256 = 0
    updated_at: uint256 = 0
    read_ok, answer, started, updated_at = self._read(feed)
    if not read_ok:
        return 0, 0, False
    if updated_at == 0 or updated_at > block.timestamp or block.timestamp - updated_at > heartbeat:
        ok = False
    if answer <= 0:
        return 0, updated_at, False

    raw: uint256 = convert(answer, uint256)
    if not _SCALE_UP:
        return unsafe_div(raw, _SCALE), updated_at, ok
    if raw > max_value(uint256) // _SCALE:
        return 0, updated_at, False
    return unsafe_mul(raw, _SCALE), updated_at, ok


@internal
@view
def _read(aggregator: address) -> (bool, int256, uint256, uint256):
    """
    @dev Calls `latestRoundData()` without reverting. Round ids are decoded as
         uint256 so that no out-of-range word can make the decoding revert,
         then checked against uint80 as the typed call in `price()` does.
    @param aggregator The feed to read.
    @return bool Whether the call succeeded with well-formed return data.
    @return int256 The answer.
    @return uint256 startedAt.
    @return uint256 updatedAt.
    """
    success: bool = False
    response: Bytes[_ROUND_DATA_SIZE] = b""
    success, response = raw_call(
        aggregator,
        method_id("latestRoundData()"),
        max_outsize=_ROUND_DATA_SIZE,
        is_static_call=True,
        revert_on_failure=False,
    )
    if not success or len(response) != _ROUND_DATA_SIZE:
        return False, 0, 0, 0
    round_id: uint256 = 0
    answer: int256 = 0
    started_at: uint256 = 0
    updated_at: uint256 = 0
    answered_in: uint256 = 0
    round_id, answer, started_at, updated_at, answered_in = abi_decode(
        response, (uint256, int256, uint256, uint256, uint256)
    )
    if round_id > convert(max_value(uint80), uint256) or answered_in > convert(max_value(uint80), uint256):
        return False, 0, 0, 0
    return True, answer, started_at, updated_at
