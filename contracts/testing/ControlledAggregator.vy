# pragma version ~=0.4.3
"""
@title Controlled Chainlink AggregatorV3, for placing over a real feed
@custom:contract-name ControlledAggregator
@license MIT
@notice A settable AggregatorV3 whose runtime code the fork tests place at a
        real feed's address (anvil_setCode) to move its price. Unlike
        MockAggregator, every value lives in storage (decimals included), so
        the code is the same for any feed and `take_over` makes it continue
        the real feed: same decimals, description and round ids.
@dev Testing only; the setters are open to anyone on purpose. After its code
     is placed over another contract, the storage slots below still hold that
     contract's data: `take_over` must be the first call, and it writes every
     fixed slot this contract reads (round entries live at hashed slots).
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


# STORAGE #


# @dev The number of decimals of every answer (the replaced feed's).
decimals: public(uint8)

# @dev The feed description, e.g. "ETH / USD".
description: public(String[64])

# @dev The id of the newest round.
latest_round: public(uint80)

# @dev Rounds written since the take-over, keyed by round id.
_rounds: HashMap[uint80, Round]


# EVENTS #


# @dev Emitted on every new round, as the real aggregator does.
event AnswerUpdated:
    current: indexed(int256)
    round_id: indexed(uint256)
    updated_at: uint256


@external
def take_over(
    decimals_: uint8,
    description_: String[64],
    round_id: uint80,
    answer: int256,
    started_at: uint256,
    updated_at: uint256,
):
    """
    @notice Continues a feed: sets its decimals and description and writes
            its latest round as this contract's latest round.
    @dev Overwrites every fixed storage slot, whatever was there before.
    @param decimals_ The feed's decimals.
    @param description_ The feed's description.
    @param round_id The feed's latest round id.
    @param answer The feed's latest answer.
    @param started_at The feed's latest startedAt.
    @param updated_at The feed's latest updatedAt.
    """
    self.decimals = decimals_
    self.description = description_
    self.latest_round = round_id
    self._rounds[round_id] = Round(answer=answer, started_at=started_at, updated_at=updated_at)


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
    @return uint80 The round id.
    @return int256 The answer.
    @return uint256 The time the round started.
    @return uint256 The time the answer was last updated.
    @return uint80 The round in which the answer was computed (= round id).
    """
    round_id: uint80 = self.latest_round
    r: Round = self._rounds[round_id]
    return round_id, r.answer, r.started_at, r.updated_at, round_id


@external
@view
def getRoundData(round_id: uint80) -> (uint80, int256, uint256, uint256, uint80):
    """
    @notice A round written since the take-over.
    @dev Reverts with "aggregator: no data" for any other round.
    @param round_id The round id.
    @return uint80 The round id.
    @return int256 The answer.
    @return uint256 The time the round started.
    @return uint256 The time the answer was last updated.
    @return uint80 The round in which the answer was computed (= round id).
    """
    r: Round = self._rounds[round_id]
    assert r.updated_at != 0, "aggregator: no data"
    return round_id, r.answer, r.started_at, r.updated_at, round_id


@external
def set_answer(answer: int256):
    """
    @notice Writes the next round with `answer`, started and updated now.
    @param answer The new answer.
    """
    self._push(answer, block.timestamp)


@external
def set_round(answer: int256, updated_at: uint256):
    """
    @notice Writes the next round with an explicit update (and start) time.
    @param answer The new answer.
    @param updated_at The update time of the round.
    """
    self._push(answer, updated_at)


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
