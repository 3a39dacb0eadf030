# pragma version ~=0.4.3
# pragma nonreentrancy on
from snekmate.auth import ownable
from snekmate.auth import ownable_2step
initializes: ownable
initializes: ownable_2step[ownable := ownable]
exports: ownable_2step.owner
x: public(uint256)
@deploy
def __init__():
    ownable.__init__()
    ownable_2step.__init__()
@external
def setx(v: uint256):
    assert v != 0, "probe: zero"
    self.x = v
