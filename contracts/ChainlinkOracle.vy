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
    def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80): view


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

# @dev Optional second feed, used only when the first is stale or invalid, and only while its answer
#      is within `max_deviation` of the first feed's last good answer.
fallback_feed: public(immutable(address))
fallback_heartbeat: public(immutable(uint256))
max_deviation: public(immutable(uint256))
fallback_decimals: public(immutable(uint8))

# @dev How many rounds back the first feed's last good answer is looked for when its latest answer
#      is invalid.
_LOOKBACK: constant(uint256) = 5
_WAD: constant(uint256) = 10**18
# @dev Widest deviation a fallback may be allowed (50%).
_MAX_DEVIATION: constant(uint256) = 5 * 10**17


@deploy
def __init__(
    feed_: address,
    heartbeat_: uint256,
    sequencer_feed_: address,
    grace_period_: uint256,
    fallback_feed_: address,
    fallback_heartbeat_: uint256,
    max_deviation_: uint256,
):
    """
    @notice Binds the adapter to a feed and caches its decimals.
    @dev Reverts with "oracle: zero feed", "oracle: zero heartbeat" or, for a
         feed with more than 36 decimals, "oracle: decimals".
    @param feed_ The Chainlink AggregatorV3 price feed.
    @param heartbeat_ The longest accepted answer age, in seconds.
    @param sequencer_feed_ The L2 sequencer uptime feed, or empty(address) for none.
    @param grace_period_ Seconds after a sequencer restart during which prices
           are refused (unused without a sequencer feed).
    @param fallback_feed_ An optional second feed (empty(address) for none).
    @param fallback_heartbeat_ The longest accepted age of the second feed's answer.
    @param max_deviation_ The largest relative distance (WAD) between the second feed's answer and
           the first feed's last good answer; reverts "oracle: deviation" outside (0, 50%].
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

    fallback_feed = fallback_feed_
    fallback_heartbeat = fallback_heartbeat_
    max_deviation = max_deviation_
    f_decimals: uint8 = 0
    if fallback_feed_ != empty(address):
        assert fallback_feed_ != feed_, "oracle: same fallback"
        assert fallback_heartbeat_ != 0, "oracle: zero heartbeat"
        assert max_deviation_ != 0 and max_deviation_ <= _MAX_DEVIATION, "oracle: deviation"
        f_decimals = staticcall AggregatorV3(fallback_feed_).decimals()
        assert f_decimals <= _MAX_FEED_DECIMALS, "oracle: decimals"
    fallback_decimals = f_decimals


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

    if fallback_feed != empty(address):
        return self._price_with_fallback()

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


@internal
@view
def _price_with_fallback() -> uint256:
    """
    @dev The first feed's price when it is fresh and valid; otherwise the second feed's, when that
         one is fresh, valid and within `max_deviation` of the first feed's last good answer.
         Reverts with the first feed's reason ("oracle: invalid answer" / "oracle: stale") when the
         second cannot stand in, or "oracle: fallback deviation" when it is too far off.
    @return uint256 The price with 18 decimals.
    """
    ok: bool = False
    primary: uint256 = 0
    stale: bool = False
    ok, primary, stale = self._primary()
    if ok:
        return primary
    # dev: no good answer of the first feed to compare the second with
    assert primary != 0, "oracle: invalid answer"
    f_price: uint256 = 0
    f_ok: bool = False
    f_price, f_ok = self._fallback()
    if not f_ok:
        if stale:
            raise "oracle: stale"
        raise "oracle: invalid answer"
    assert self._within(f_price, primary), "oracle: fallback deviation"
    return f_price


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

    if fallback_feed != empty(address):
        p_ok: bool = False
        primary: uint256 = 0
        p_stale: bool = False
        p_ok, primary, p_stale = self._primary()
        if not p_ok and primary != 0:
            f_price: uint256 = 0
            f_ok: bool = False
            f_price, f_ok = self._fallback()
            if f_ok and self._within(f_price, primary):
                f_read: bool = False
                f_answer: int256 = 0
                f_started: uint256 = 0
                f_updated: uint256 = 0
                f_read, f_answer, f_started, f_updated = self._read(fallback_feed)
                return f_price, f_updated, ok

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
def _primary() -> (bool, uint256, bool):
    """
    @dev The first feed, without reverting: (usable now, its last good price, stale). The last
         good price is the latest answer when positive (fresh or not), else the newest positive
         answer of the previous few rounds, else 0.
    @return bool Whether the latest answer is positive and fresh.
    @return uint256 The last good price, 18 decimals (0 if none).
    @return bool Whether the latest answer is positive but stale (else invalid).
    """
    read_ok: bool = False
    answer: int256 = 0
    started: uint256 = 0
    updated_at: uint256 = 0
    read_ok, answer, started, updated_at = self._read(feed)
    if not read_ok:
        return False, 0, False
    if answer > 0:
        scaled: uint256 = self._scale(convert(answer, uint256), feed_decimals)
        return self._fresh(updated_at, heartbeat) and scaled != 0, scaled, True
    # the latest answer is invalid: look back a few rounds for the last good one
    round_id: uint256 = self._round_id(feed)
    for k: uint256 in range(1, _LOOKBACK + 1):
        if k > round_id:
            break
        ok: bool = False
        back: Bytes[_ROUND_DATA_SIZE] = b""
        ok, back = raw_call(
            feed,
            abi_encode(round_id - k, method_id=method_id("getRoundData(uint80)")),
            max_outsize=_ROUND_DATA_SIZE,
            is_static_call=True,
            revert_on_failure=False,
        )
        if not ok or len(back) != _ROUND_DATA_SIZE:
            break
        r: uint256 = 0
        a: int256 = 0
        s: uint256 = 0
        u: uint256 = 0
        i: uint256 = 0
        r, a, s, u, i = abi_decode(back, (uint256, int256, uint256, uint256, uint256))
        if a > 0:
            return False, self._scale(convert(a, uint256), feed_decimals), False
    return False, 0, False


@internal
@view
def _fallback() -> (uint256, bool):
    """
    @dev The second feed's price and whether it is positive and fresh.
    @return uint256 The price, 18 decimals.
    @return bool Usable.
    """
    read_ok: bool = False
    answer: int256 = 0
    started: uint256 = 0
    updated_at: uint256 = 0
    read_ok, answer, started, updated_at = self._read(fallback_feed)
    if not read_ok or answer <= 0 or not self._fresh(updated_at, fallback_heartbeat):
        return 0, False
    scaled: uint256 = self._scale(convert(answer, uint256), fallback_decimals)
    return scaled, scaled != 0


@internal
@view
def _round_id(aggregator: address) -> uint256:
    """
    @dev The latest round id (0 when the call fails).
    @param aggregator The feed.
    @return uint256 The round id.
    """
    success: bool = False
    response: Bytes[_ROUND_DATA_SIZE] = b""
    success, response = raw_call(
        aggregator, method_id("latestRoundData()"), max_outsize=_ROUND_DATA_SIZE, is_static_call=True, revert_on_failure=False
    )
    if not success or len(response) != _ROUND_DATA_SIZE:
        return 0
    return min(abi_decode(slice(response, 0, 32), uint256), convert(max_value(uint80), uint256))


@internal
@view
def _fresh(updated_at: uint256, max_age: uint256) -> bool:
    """
    @dev Whether an update time is set, not in the future and at most `max_age` old.
    @param updated_at The feed's updatedAt.
    @param max_age The heartbeat.
    @return bool Fresh.
    """
    return updated_at != 0 and updated_at <= block.timestamp and block.timestamp - updated_at <= max_age


@internal
@view
def _within(price_: uint256, reference: uint256) -> bool:
    """
    @dev Whether |price / reference - 1| <= max_deviation.
    @param price_ The second feed's price.
    @param reference The first feed's last good price.
    @return bool Within the deviation.
    """
    diff: uint256 = price_ - reference if price_ > reference else reference - price_
    return diff * _WAD <= max_deviation * reference


@internal
@pure
def _scale(raw: uint256, decimals_: uint8) -> uint256:
    """
    @dev A positive answer of `decimals_` decimals in 18 decimals; 0 when it cannot be scaled.
    @param raw The answer.
    @param decimals_ Its decimals (at most 36).
    @return uint256 The price.
    """
    if decimals_ > _WAD_DECIMALS:
        return raw // 10 ** convert(decimals_ - _WAD_DECIMALS, uint256)
    factor: uint256 = 10 ** convert(_WAD_DECIMALS - decimals_, uint256)
    if raw > max_value(uint256) // factor:
        return 0
    return raw * factor


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
