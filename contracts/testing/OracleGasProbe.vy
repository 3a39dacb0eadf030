# pragma version ~=0.4.3
"""
@title Oracle gas probe
@custom:contract-name OracleGasProbe
@license MIT
@notice Measures the gas an external caller (such as the engine) spends on
        `IOracle.price()`, cold and warm, and on the bare feed read, so the
        adapter's own overhead can be told apart from the feed's.
@dev Testing only. Run the measurements as transactions so that every
     address and slot starts cold, as in a fresh engine call.
@custom:kill Nothing can be stopped; it is a mock.
"""


from ..interfaces import IOracle


# @dev The part of the Chainlink aggregator interface that is measured.
interface AggregatorV3:
    def latestRoundData() -> (uint80, int256, uint256, uint256, uint80): view


# STORAGE #


# @dev Gas of the first (cold) `price()` call of the last measurement.
cold_gas: public(uint256)

# @dev Gas of the second (warm) `price()` call of the last measurement.
warm_gas: public(uint256)

# @dev Gas of the last cold bare `latestRoundData()` call.
feed_gas: public(uint256)

# @dev The price read by the last `measure_price` call.
last_price: public(uint256)


@external
def measure_price(oracle: address):
    """
    @notice Calls `price()` on `oracle` twice and records the gas of each call.
    @param oracle The oracle to measure.
    """
    start: uint256 = msg.gas
    p: uint256 = staticcall IOracle(oracle).price()
    middle: uint256 = msg.gas
    p = staticcall IOracle(oracle).price()
    end: uint256 = msg.gas
    self.cold_gas = start - middle
    self.warm_gas = middle - end
    self.last_price = p


@external
def measure_feed(feed: address):
    """
    @notice Calls `latestRoundData()` on `feed` once and records its gas.
    @param feed The aggregator to measure.
    """
    a: uint80 = 0
    b: int256 = 0
    c: uint256 = 0
    d: uint256 = 0
    e: uint80 = 0
    start: uint256 = msg.gas
    a, b, c, d, e = staticcall AggregatorV3(feed).latestRoundData()
    end: uint256 = msg.gas
    self.feed_gas = start - end
