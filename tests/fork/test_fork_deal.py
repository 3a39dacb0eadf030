"""`deal` finds a token's balance slot by probing storage, on the real tokens (USDC behind its proxy,
USDT) and on a Solidity-layout token behind a proxy built here, and the dealt tokens are real:
they move with the token's own transfer."""

from eth_utils import keccak, to_checksum_address

from forktools import ERC20_ABI, FIAT_TOKEN_ABI, USDT_ABI, contract, deal, find_balance_slot, mapping_slot
from upstream import eip1167_proxy

# balanceOf(address) of a Solidity `mapping(address => uint256)` at slot 9 (USDC's FiatToken keeps
# its balances there): mstore(0, arg) mstore(32, 9) return sload(keccak(0, 64)).
SOLIDITY_SLOT9_BALANCE_OF = "0x6004356000526009602052604060002054600052602060" + "00f3"


def _fresh_address(tag: str) -> str:
    return to_checksum_address(keccak(tag.encode())[-20:])


def test_deal__usdc__sets_the_balance_and_it_transfers(spec, trader, trader2):
    usdc = contract(spec.usdc, FIAT_TOKEN_ABI)
    before2 = usdc.balanceOf(trader2.address)
    supply = usdc.totalSupply()
    deal(spec.usdc, trader, 1_234_567_890)
    assert usdc.balanceOf(trader.address) == 1_234_567_890
    assert usdc.balanceOf(trader2.address) == before2
    assert usdc.totalSupply() == supply
    usdc.transfer(trader2.address, 234_567_890, sender=trader)
    assert usdc.balanceOf(trader.address) == 1_000_000_000
    assert usdc.balanceOf(trader2.address) == before2 + 234_567_890
    deal(spec.usdc, trader, 0)
    assert usdc.balanceOf(trader.address) == 0


def test_deal__usdt__sets_the_balance_and_it_transfers(spec, trader, trader2):
    usdt = contract(spec.usdt, USDT_ABI)
    deal(spec.usdt, trader, 5_000_000)
    before2 = usdt.balanceOf(trader2.address)
    usdt.transfer(trader2.address, 2_000_000, sender=trader)  # returns nothing
    assert usdt.balanceOf(trader.address) == 3_000_000
    assert usdt.balanceOf(trader2.address) == before2 + 2_000_000


def test_deal__the_slot_found_is_a_mapping_slot_of_the_token_itself(spec, trader):
    """The balance lives in the token's (the proxy's) storage at the slot the probe reports."""
    from ape import chain

    layout, slot = find_balance_slot(spec.usdc, trader.address)
    deal(spec.usdc, trader, 777)
    raw = chain.provider.make_request("eth_getStorageAt", [spec.usdc, hex(mapping_slot(layout, slot, trader.address)), "latest"])
    assert int(raw, 16) == 777


def test_deal__solidity_layout_behind_a_proxy__is_found_at_slot_9(chain, trader):
    implementation = _fresh_address("ballast fork test: solidity token implementation")
    proxy = _fresh_address("ballast fork test: solidity token proxy")
    chain.provider.make_request("anvil_setCode", [implementation, SOLIDITY_SLOT9_BALANCE_OF])
    chain.provider.make_request("anvil_setCode", [proxy, eip1167_proxy(implementation)])

    assert find_balance_slot(proxy, trader.address) == ("solidity", 9)
    deal(proxy, trader, 10**12)
    assert contract(proxy, ERC20_ABI).balanceOf(trader.address) == 10**12
    # written in the proxy's storage, not the implementation's
    where = hex(mapping_slot("solidity", 9, trader.address))
    assert int(chain.provider.make_request("eth_getStorageAt", [proxy, where, "latest"]), 16) == 10**12
    assert int(chain.provider.make_request("eth_getStorageAt", [implementation, where, "latest"]), 16) == 0
