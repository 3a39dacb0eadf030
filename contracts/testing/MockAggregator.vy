# pragma version ~=0.4.3
"""
@title Mock Chainlink AggregatorV3
@custom:contract-name MockAggregator
@license MIT
@notice A test stand-in for a Chainlink `AggregatorV3Interface` price feed.
        Every round is stored, so `getRoundData` can replay history. It also
        serves as an L2 sequencer uptime feed: answer 0 means the sequencer is
        up, 1 means it is down, and `startedAt` is the time of the status change.
@dev Testing only. The setters are open to anyone on purpose.
@custom:kill Nothing can be stopped; it is a mock.
"""


# CONSTANTS #


# @dev The AggregatorV3 interface version reported by `version()`.
_VERSION: constant(uint256) = 4


# STRUCTS #


# @dev One stored round.
struct Round:
    answer: int256
    started_at: uint256
    updated_at: uint256


# IMMUTABLES #


# @dev The number of decimals of every answer.
decimals: public(immutable(uint8))


# STORAGE #


# @dev The human-readable feed description, e.g. "ETH / USD".
description: public(String[64])

# @dev The id of the newest round; rounds are numbered from 1.
latest_round: public(uint80)

# @dev Every round ever written, keyed by round id.
_rounds: HashMap[uint80, Round]

# @dev When True, `latestRoundData` reverts (a deprecated or paused feed).
broken: public(bool)


# EVENTS #


# @dev Emitted on every new round, as the real aggregator does.
event AnswerUpdated:
    current: indexed(int256)
    round_id: indexed(uint256)
    updated_at: uint256


@deploy
def __init__(decimals_: uint8, initial_answer: int256, description_: String[64]):
    """
    @notice Writes round 1 with `initial_answer` at the current block time.
    @param decimals_ The number of decimals of the answers.
    @param initial_answer The answer of round 1.
    @param description_ The feed description.
    """
    decimals = decimals_
    self.description = description_
    self._push(initial_answer, block.timestamp)


@external
@pure
def version() -> uint256:
    """
    @notice The aggregator interface version.
    @return uint256 Always 4.
    """
    return _VERSION


@external
@view
def latestRoundData() -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice The newest round.
    @dev Reverts with "aggregator: broken" while `broken` is set.
    @return uint80 The round id.
    @return int256 The answer.
    @return uint256 The time the round started.
    @return uint256 The time the answer was last updated.
    @return uint80 The round in which the answer was computed (= round id).
    """
    assert not self.broken, "aggregator: broken"
    round_id: uint80 = self.latest_round
    r: Round = self._rounds[round_id]
    return round_id, r.answer, r.started_at, r.updated_at, round_id


@external
@view
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice A past round.
    @dev Reverts with "aggregator: no data" for a round never written.
    @param round_id The round id.
    @return uint80 The round id.
    @return int256 The answer.
    @return uint256 The time the round started.
    @return uint256 The time the answer was last updated.
    @return uint80 The round in which the answer was computed (= round id).
    """
    assert round_id != 0 and round_id <= self.latest_round, "aggregator: no data"
    r: Round = self._rounds[round_id]
    return round_id, r.answer, r.started_at, r.updated_at, round_id


@external
def set_answer(answer: int256):
    """
    @notice Writes a new round with `answer`, updated and started now.
    @param answer The new answer (for a sequencer feed: 0 up, 1 down).
    """
    self._push(answer, block.timestamp)


@external
def set_round(answer: int256, updated_at: uint256):
    """
    @notice Writes a new round with an explicit update time, to make stale,
            future or zero-time answers.
    @dev `startedAt` is set to `updated_at` as well.
    @param answer The new answer.
    @param updated_at The update (and start) time of the round.
    """
    self._push(answer, updated_at)


@external
def set_broken(broken_: bool):
    """
    @notice Makes `latestRoundData` revert (True) or work again (False).
    @param broken_ The new state.
    """
    self.broken = broken_


@internal
def _push(answer: int256, updated_at: uint256):
    """
    @dev Appends a round and logs `AnswerUpdated`.
    @param answer The answer of the round.
    @param updated_at The update (and start) time of the round.
    """
    round_id: uint80 = self.latest_round + 1
    self.latest_round = round_id
    self._rounds[round_id] = Round(answer=answer, started_at=updated_at, updated_at=updated_at)
    log AnswerUpdated(current=answer, round_id=convert(round_id, uint256), updated_at=updated_at)
