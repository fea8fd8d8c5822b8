"""LicenseManager: terms, purchases (ERC-1155 licences), escrow, voucher settlement, allow-list.

Branch tree of settle (each leaf is a test below):
  no vouchers / more than MAX_VOUCHERS                -> BadBatchSize (MAX ok)
  deadline passed                                     -> VoucherExpired
  terms unknown                                       -> UnknownVoucherTerms
  signed for another asset than the terms'            -> WrongSigner
  terms in another currency                           -> CurrencyMismatch
  terms not metered                                   -> NotMetered
  cumulative == settled (replay)                      -> VoucherAlreadySettled
  cumulative < settled                                -> CumulativeBelowSettled
  EOA payer: high s                                   -> MalleableSignature
             unparseable                              -> BadSignature
             other signer / chain id / deployment     -> WrongSigner
  contract payer: ERC-1271 rejects (or writes state)  -> ContractSignatureRejected (valid: ok)
  escrow short                                        -> InsufficientEscrow
  otherwise -> channel advanced, escrow debited, revenue credited to the asset
"""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak

from agents.vouchers import Voucher, as_call_tuple, sign_voucher, voucher_digest
from tests.contracts.helpers import (
    ETH,
    ZERO_ADDRESS,
    asset_record,
    attach_terms,
    buy_license,
    digest,
    register_asset,
    signed_voucher,
    terms_input,
)

pytestmark = pytest.mark.chain

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
PRICE = 10**15
PER_USE = 10**12


@pytest.fixture
def asset(core, model_id, creator) -> bytes:  # type: ignore[no-untyped-def]
    record = asset_record("asset", creator, model_id)
    register_asset(core.provenance, creator, record)
    return record.content_digest


@pytest.fixture
def terms_id(core, creator, asset) -> int:  # type: ignore[no-untyped-def]
    return attach_terms(core.licenses, creator, asset, price=PRICE, price_per_use=PER_USE)


@pytest.fixture
def token(project, deployer, core):  # type: ignore[no-untyped-def]
    t = deployer.deploy(project.TestToken, "Test USD", "TUSD", 2)
    core.licenses.setCurrencyAllowed(t, True, sender=deployer)
    return t


def deadline(chain) -> int:  # type: ignore[no-untyped-def]
    return chain.pending_timestamp + 3_600


# --- terms --------------------------------------------------------------------------------


def test_attach_terms_stores_and_emits(core, creator, asset):
    receipt = core.licenses.attachTerms(asset, terms_input(price=PRICE, duration=60), sender=creator)
    event = receipt.events.filter(core.licenses.TermsAttached)[0]
    assert event.termsId == 1 and event.asset == asset
    terms = core.licenses.getTerms(1)
    assert terms.asset == asset and terms.price == PRICE and terms.duration == 60 and terms.active


def test_attach_terms_reverts(core, creator, stranger, asset, token):
    with ape.reverts(core.licenses.LicenseManager__UnknownAsset, asset=digest("x")):
        core.licenses.attachTerms(digest("x"), terms_input(), sender=creator)
    with ape.reverts(core.licenses.LicenseManager__NotCreator, asset=asset, caller=stranger.address):
        core.licenses.attachTerms(asset, terms_input(), sender=stranger)
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed, currency=stranger.address):
        core.licenses.attachTerms(asset, terms_input(currency=stranger.address), sender=creator)
    with ape.reverts(core.licenses.LicenseManager__BadDerivativeShare, shareBps=5_001):
        core.licenses.attachTerms(asset, terms_input(derivative_bps=5_001), sender=creator)
    with ape.reverts(core.licenses.LicenseManager__BadDerivativeShare, shareBps=100):
        core.licenses.attachTerms(asset, terms_input(derivative_bps=100, derivatives=False), sender=creator)
    core.licenses.attachTerms(asset, terms_input(derivative_bps=5_000, currency=token.address), sender=creator)


def test_set_terms_active(core, creator, stranger, terms_id, payer):
    with ape.reverts(core.licenses.LicenseManager__NotCreator):
        core.licenses.setTermsActive(terms_id, False, sender=stranger)
    with ape.reverts(core.licenses.LicenseManager__UnknownTerms, termsId=9):
        core.licenses.setTermsActive(9, False, sender=creator)
    receipt = core.licenses.setTermsActive(terms_id, False, sender=creator)
    assert len(receipt.events.filter(core.licenses.TermsActiveSet)) == 1
    with ape.reverts(core.licenses.LicenseManager__TermsInactive, termsId=terms_id):
        core.licenses.purchase(terms_id, payer, sender=payer, value=PRICE)


# --- purchase -----------------------------------------------------------------------------


def test_purchase_mints_licence_and_credits_revenue(core, payer, other_payer, terms_id, asset, chain):
    receipt = core.licenses.purchase(terms_id, other_payer, sender=payer, value=PRICE)
    event = receipt.events.filter(core.licenses.LicensePurchased)[0]
    assert event.licenseId == (terms_id << 64) | (2**64 - 1)
    assert core.licenses.balanceOf(other_payer, event.licenseId) == 1
    assert core.licenses.decodeLicenseId(event.licenseId) == (terms_id, 2**64 - 1)
    assert core.splitter.pendingRevenueOf(asset, ETH) == PRICE
    assert len(receipt.events.filter(core.licenses.TransferSingle)) == 1
    assert core.licenses.uri(event.licenseId) == core.provenance.tokenURI(int.from_bytes(asset, "big"))
    assert core.licenses.uri(99 << 64) == ""


def test_purchase_with_duration_encodes_expiry(core, creator, payer, asset, chain):
    t = attach_terms(core.licenses, creator, asset, duration=3_600)
    licence = buy_license(core.licenses, payer, t)
    _, expires = core.licenses.decodeLicenseId(licence)
    assert expires == chain.blocks.head.timestamp + 3_600


def test_purchase_reverts(core, payer, terms_id, creator, asset):
    with ape.reverts(core.licenses.LicenseManager__UnknownTerms, termsId=0):
        core.licenses.purchase(0, payer, sender=payer, value=PRICE)
    with ape.reverts(core.licenses.LicenseManager__WrongPayment, sent=PRICE - 1, due=PRICE):
        core.licenses.purchase(terms_id, payer, sender=payer, value=PRICE - 1)
    with ape.reverts(core.licenses.LicenseManager__ZeroRecipient):
        core.licenses.purchase(terms_id, ZERO_ADDRESS, sender=payer, value=PRICE)
    free = attach_terms(core.licenses, creator, asset, price=0)
    with ape.reverts(core.licenses.LicenseManager__WrongPayment, sent=1, due=0):
        core.licenses.purchase(free, payer, sender=payer, value=1)
    core.licenses.purchase(free, payer, sender=payer)


def test_purchase_in_erc20(core, creator, payer, asset, token):
    t = attach_terms(core.licenses, creator, asset, currency=token.address, price=1_234)
    token.mint(payer, 10_000, sender=payer)
    token.approve(core.licenses, 1_234, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__WrongPayment, sent=1, due=0):
        core.licenses.purchase(t, payer, sender=payer, value=1)
    core.licenses.purchase(t, payer, sender=payer)
    assert token.balanceOf(core.splitter) == 1_234
    assert core.splitter.pendingRevenueOf(asset, token) == 1_234


def test_purchase_refuses_fee_on_transfer_token(project, core, deployer, creator, payer, asset):
    fot = deployer.deploy(project.FeeOnTransferToken)
    core.licenses.setCurrencyAllowed(fot, True, sender=deployer)
    t = attach_terms(core.licenses, creator, asset, currency=fot.address, price=10_000)
    fot.mint(payer, 10_000, sender=payer)
    fot.approve(core.licenses, 10_000, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__TransferMismatch, expected=10_000, received=9_900):
        core.licenses.purchase(t, payer, sender=payer)


def test_purchase_works_with_no_return_token(project, core, deployer, creator, payer, asset):
    nrt = deployer.deploy(project.NoReturnToken)
    core.licenses.setCurrencyAllowed(nrt, True, sender=deployer)
    t = attach_terms(core.licenses, creator, asset, currency=nrt.address, price=500)
    nrt.mint(payer, 500, sender=payer)
    nrt.approve(core.licenses, 500, sender=payer)
    core.licenses.purchase(t, payer, sender=payer)
    assert nrt.balanceOf(core.splitter) == 500


def test_purchase_reverts_when_currency_removed_from_allow_list(core, deployer, creator, payer, asset, token):
    t = attach_terms(core.licenses, creator, asset, currency=token.address, price=1)
    core.licenses.setCurrencyAllowed(token, False, sender=deployer)
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed, currency=token.address):
        core.licenses.purchase(t, payer, sender=payer)


def test_purchase_to_hostile_receivers(project, core, deployer, payer, terms_id):
    actor = deployer.deploy(project.HostileActor)
    actor.setMode(1, sender=deployer)  # revert
    with ape.reverts():
        core.licenses.purchase(terms_id, actor, sender=payer, value=PRICE)
    # Re-entering purchase from the ERC-1155 hook is stopped by the guard; the outer purchase
    # still completes, and exactly one licence is minted.
    actor.setMode(3, sender=deployer)
    actor.setReentry(core.licenses, core.licenses.purchase.encode_input(terms_id, actor.address), sender=deployer)
    core.licenses.purchase(terms_id, actor, sender=payer, value=PRICE)
    assert actor.reentries() == 1 and not actor.lastReentrySucceeded()
    assert core.licenses.balanceOf(actor, (terms_id << 64) | (2**64 - 1)) == 1


def test_consume_only_by_provenance_registry(core, stranger, terms_id, asset):
    with ape.reverts(core.licenses.LicenseManager__OnlyProvenanceRegistry, caller=stranger.address):
        core.licenses.consumeDerivativeLicense(stranger, asset, terms_id << 64, sender=stranger)


# --- escrow -------------------------------------------------------------------------------


def test_deposit_and_delayed_withdrawal(core, payer, stranger, chain):
    receipt = core.licenses.deposit(ETH, 10**16, sender=payer, value=10**16)
    assert receipt.events.filter(core.licenses.EscrowDeposited)[0].balance == 10**16
    assert core.splitter.reserveOf(ETH) == 10**16
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked, unlockAt=0):
        core.licenses.withdrawEscrow(ETH, payer, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__ZeroAmount):
        core.licenses.requestWithdrawal(ETH, 0, sender=payer)
    core.licenses.requestWithdrawal(ETH, 4 * 10**15, sender=payer)
    _, pending, unlock = core.licenses.escrowOf(payer, ETH)
    assert pending == 4 * 10**15 and unlock == chain.blocks.head.timestamp + 86_400
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked):
        core.licenses.withdrawEscrow(ETH, payer, sender=payer)
    chain.pending_timestamp += 86_400
    with ape.reverts(core.licenses.LicenseManager__ZeroRecipient):
        core.licenses.withdrawEscrow(ETH, ZERO_ADDRESS, sender=payer)
    before = stranger.balance
    core.licenses.withdrawEscrow(ETH, stranger, sender=payer)
    assert stranger.balance == before + 4 * 10**15
    assert core.licenses.escrowOf(payer, ETH) == (6 * 10**15, 0, 0)
    assert core.splitter.reserveOf(ETH) == 6 * 10**15


def test_cancel_withdrawal(core, payer, chain):
    core.licenses.deposit(ETH, 100, sender=payer, value=100)
    core.licenses.requestWithdrawal(ETH, 100, sender=payer)
    core.licenses.cancelWithdrawal(ETH, sender=payer)
    chain.pending_timestamp += 86_400
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked, unlockAt=0):
        core.licenses.withdrawEscrow(ETH, payer, sender=payer)


def test_deposit_reverts(project, core, deployer, payer, token):
    with ape.reverts(core.licenses.LicenseManager__ZeroAmount):
        core.licenses.deposit(ETH, 0, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__WrongPayment, sent=1, due=2):
        core.licenses.deposit(ETH, 2, sender=payer, value=1)
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed):
        core.licenses.deposit(payer.address, 2, sender=payer)
    fot = deployer.deploy(project.FeeOnTransferToken)
    core.licenses.setCurrencyAllowed(fot, True, sender=deployer)
    fot.mint(payer, 1_000, sender=payer)
    fot.approve(core.licenses, 1_000, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__TransferMismatch):
        core.licenses.deposit(fot, 1_000, sender=payer)


def test_settlement_during_delay_comes_before_withdrawal(core, payer, asset, terms_id, chain):
    core.licenses.deposit(ETH, 10 * PER_USE, sender=payer, value=10 * PER_USE)
    core.licenses.requestWithdrawal(ETH, 10 * PER_USE, sender=payer)
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=7 * PER_USE, deadline=deadline(chain))
    core.licenses.settle(ETH, [v], sender=payer)
    chain.pending_timestamp += 86_400
    receipt = core.licenses.withdrawEscrow(ETH, payer, sender=payer)
    assert receipt.events.filter(core.licenses.EscrowWithdrawn)[0].amount == 3 * PER_USE


# --- settle -------------------------------------------------------------------------------


@pytest.fixture
def funded(core, payer, other_payer):  # type: ignore[no-untyped-def]
    for p in (payer, other_payer):
        core.licenses.deposit(ETH, 10**17, sender=p, value=10**17)


def test_valid_voucher_settles_once(core, payer, stranger, asset, terms_id, funded, chain):
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=5 * PER_USE, deadline=deadline(chain))
    receipt = core.licenses.settle(ETH, [v], sender=stranger)
    event = receipt.events.filter(core.licenses.VoucherSettled)[0]
    assert event.cumulativeAmount == 5 * PER_USE and event.payer == payer.address
    assert core.licenses.settledOf(payer, terms_id) == 5 * PER_USE
    assert core.licenses.escrowOf(payer, ETH)[0] == 10**17 - 5 * PER_USE
    assert core.splitter.pendingRevenueOf(asset, ETH) == 5 * PER_USE
    with ape.reverts(core.licenses.LicenseManager__VoucherAlreadySettled, index=0, cumulativeAmount=5 * PER_USE):
        core.licenses.settle(ETH, [v], sender=stranger)
    # The next voucher pays only the difference.
    v2 = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=8 * PER_USE, deadline=deadline(chain))
    core.licenses.settle(ETH, [v2], sender=stranger)
    assert core.splitter.pendingRevenueOf(asset, ETH) == 8 * PER_USE
    with ape.reverts(core.licenses.LicenseManager__CumulativeBelowSettled, cumulativeAmount=5 * PER_USE, settled=8 * PER_USE):
        core.licenses.settle(ETH, [v], sender=stranger)


def test_settle_aggregates_runs_of_payers_and_assets(core, model_id, creator, payer, other_payer, asset, terms_id, funded, chain):
    other = asset_record("other", creator, model_id)
    register_asset(core.provenance, creator, other)
    t2 = attach_terms(core.licenses, creator, other.content_digest)
    d = deadline(chain)
    vouchers = [
        signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=d),
        signed_voucher(core.licenses, chain.chain_id, payer, asset=other.content_digest, terms_id=t2, cumulative=2, deadline=d),
        signed_voucher(core.licenses, chain.chain_id, other_payer, asset=other.content_digest, terms_id=t2, cumulative=4, deadline=d),
        signed_voucher(core.licenses, chain.chain_id, other_payer, asset=asset, terms_id=terms_id, cumulative=8, deadline=d),
    ]
    core.licenses.settle(ETH, vouchers, sender=payer)
    assert core.splitter.pendingRevenueOf(asset, ETH) == 9
    assert core.splitter.pendingRevenueOf(other.content_digest, ETH) == 6
    assert core.licenses.escrowOf(payer, ETH)[0] == 10**17 - 3
    assert core.licenses.escrowOf(other_payer, ETH)[0] == 10**17 - 12
    assert core.splitter.reserveOf(ETH) == 2 * 10**17 - 15


def test_settle_reverts_on_batch_size(core, payer):
    with ape.reverts(core.licenses.LicenseManager__BadBatchSize, count=0, maxCount=192):
        core.licenses.settle(ETH, [], sender=payer)


def test_settle_reverts_on_expired_voucher(core, payer, asset, terms_id, funded, chain):
    past = chain.pending_timestamp - 1
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=past)
    with ape.reverts(core.licenses.LicenseManager__VoucherExpired, index=0, deadline=past):
        core.licenses.settle(ETH, [v], sender=payer)


def test_settle_reverts_on_terms_mismatch(core, creator, payer, asset, terms_id, funded, token, chain):
    d = deadline(chain)
    # The signature covers the terms' asset: a voucher signed for another asset fails as a forgery.
    wrong_asset = signed_voucher(core.licenses, chain.chain_id, payer, asset=digest("x"), terms_id=terms_id, cumulative=1, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, index=0, payer=payer.address):
        core.licenses.settle(ETH, [wrong_asset], sender=payer)
    unknown = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=77, cumulative=1, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__UnknownVoucherTerms, index=0, termsId=77):
        core.licenses.settle(ETH, [unknown], sender=payer)
    erc20_terms = attach_terms(core.licenses, creator, asset, currency=token.address)
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=erc20_terms, cumulative=1, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__CurrencyMismatch, termsCurrency=token.address, batchCurrency=ETH):
        core.licenses.settle(ETH, [v], sender=payer)
    flat = attach_terms(core.licenses, creator, asset, price_per_use=0)
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=flat, cumulative=1, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__NotMetered, termsId=flat):
        core.licenses.settle(ETH, [v], sender=payer)


def _split(sig: bytes) -> tuple[int, int, int]:
    return int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]


def test_settle_reverts_on_high_s_signature(core, payer, asset, terms_id, funded, chain):
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=deadline(chain))
    r, s, recid = _split(v[4])
    high = r.to_bytes(32, "big") + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - recid])
    with ape.reverts(core.licenses.LicenseManager__MalleableSignature, index=0):
        core.licenses.settle(ETH, [(*v[:4], high)], sender=payer)


def test_settle_reverts_on_unparseable_signature(core, payer, asset, terms_id, funded, chain):
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=deadline(chain))
    for bad in (v[4][:64], b"", v[4][:64] + b"\x05"):
        with ape.reverts(core.licenses.LicenseManager__BadSignature, index=0):
            core.licenses.settle(ETH, [(*v[:4], bad)], sender=payer)


def test_settle_reverts_on_wrong_signer_chain_or_deployment(core, payer, other_payer, asset, terms_id, funded, chain):
    d = deadline(chain)
    forged = signed_voucher(core.licenses, chain.chain_id, other_payer, payer=payer.address, asset=asset, terms_id=terms_id, cumulative=1, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, index=0, payer=payer.address):
        core.licenses.settle(ETH, [forged], sender=payer)
    voucher = Voucher(payer.address, asset, terms_id, 1, d)
    other_chain = sign_voucher(voucher, payer.private_key, chain.chain_id + 1, core.licenses.address)
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, payer=payer.address):
        core.licenses.settle(ETH, [as_call_tuple(voucher, other_chain)], sender=payer)
    other_deployment = sign_voucher(voucher, payer.private_key, chain.chain_id, core.provenance.address)
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, payer=payer.address):
        core.licenses.settle(ETH, [as_call_tuple(voucher, other_deployment)], sender=payer)


def test_settle_reverts_on_insufficient_escrow(core, payer, asset, terms_id, chain):
    core.licenses.deposit(ETH, 5, sender=payer, value=5)
    d = deadline(chain)
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=6, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__InsufficientEscrow, index=0, payer=payer.address, needed=6, available=5):
        core.licenses.settle(ETH, [v], sender=payer)


def test_python_digest_matches_contract(core, payer, asset, terms_id, chain):
    voucher = Voucher(payer.address, asset, terms_id, 42, 1_000)
    assert core.licenses.voucherDigest(payer, asset, terms_id, 42, 1_000) == voucher_digest(voucher, chain.chain_id, core.licenses.address)
    typehash = keccak(text="Voucher(address payer,bytes32 asset,uint256 termsId,uint256 cumulativeAmount,uint256 deadline)")
    assert core.licenses.VOUCHER_TYPEHASH() == typehash


def test_erc1271_wallet_payer(project, core, payer, asset, terms_id, chain):
    wallet = payer.deploy(project.TestWallet1271, payer.address)
    wallet.exec(core.licenses, core.licenses.deposit.encode_input(ETH, 1_000), sender=payer, value=1_000)
    d = deadline(chain)
    v = signed_voucher(core.licenses, chain.chain_id, payer, payer=wallet.address, asset=asset, terms_id=terms_id, cumulative=10, deadline=d)
    wallet.setMode(1, sender=payer)  # reject all
    with ape.reverts(core.licenses.LicenseManager__ContractSignatureRejected, index=0, payer=wallet.address):
        core.licenses.settle(ETH, [v], sender=payer)
    wallet.setMode(2, sender=payer)  # tries to write state under STATICCALL
    with ape.reverts(core.licenses.LicenseManager__ContractSignatureRejected):
        core.licenses.settle(ETH, [v], sender=payer)
    wallet.setMode(0, sender=payer)
    core.licenses.settle(ETH, [v], sender=payer)
    assert core.licenses.settledOf(wallet, terms_id) == 10
    assert wallet.writes() == 0


@pytest.mark.slow
def test_settle_at_max_vouchers_in_the_dearest_case_costs_under_half_a_block(accounts, core, creator, model_id, chain):
    # The dearest batch: every voucher from its own payer, for its own asset that has no pending
    # revenue, opening a new channel, so nothing aggregates and every slot is cold or fresh.
    cap = int(core.licenses.MAX_VOUCHERS())
    payers = [accounts.generate_test_account() for _ in range(cap)]
    d = deadline(chain)
    vouchers = []
    for i, p in enumerate(payers):
        creator.transfer(p, 10**18)
        core.licenses.deposit(ETH, 10**15, sender=p, value=10**15)
        rec = asset_record(f"cap{i}", creator, model_id)
        register_asset(core.provenance, creator, rec)
        terms_id = attach_terms(core.licenses, creator, rec.content_digest)
        vouchers.append(
            signed_voucher(core.licenses, chain.chain_id, p, asset=rec.content_digest, terms_id=terms_id, cumulative=PER_USE, deadline=d)
        )
    receipt = core.licenses.settle(ETH, vouchers, sender=creator)
    assert receipt.gas_used < 15_000_000
    assert len(receipt.events.filter(core.splitter.RevenueAdded)) == cap, "no run aggregated: the dearest case"
    extra = signed_voucher(
        core.licenses, chain.chain_id, payers[-1], asset=rec.content_digest, terms_id=terms_id, cumulative=2 * PER_USE, deadline=d
    )
    with ape.reverts(core.licenses.LicenseManager__BadBatchSize, count=cap + 1, maxCount=cap):
        core.licenses.settle(ETH, [*vouchers, extra], sender=creator)


# --- admin --------------------------------------------------------------------------------


def test_allow_list_is_owner_only_and_ownership_moves_in_two_steps(core, deployer, stranger, token):
    with ape.reverts(core.licenses.OwnableUnauthorizedAccount, account=stranger.address):
        core.licenses.setCurrencyAllowed(token, False, sender=stranger)
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed, currency=ETH):
        core.licenses.setCurrencyAllowed(ETH, False, sender=deployer)
    receipt = core.licenses.setCurrencyAllowed(token, False, sender=deployer)
    assert len(receipt.events.filter(core.licenses.CurrencyAllowed)) == 1
    assert not core.licenses.isCurrencyAllowed(token)
    assert core.licenses.isCurrencyAllowed(ETH)
    core.licenses.transferOwnership(stranger, sender=deployer)
    assert core.licenses.owner() == deployer.address
    with ape.reverts(core.licenses.OwnableUnauthorizedAccount):
        core.licenses.acceptOwnership(sender=deployer)
    core.licenses.acceptOwnership(sender=stranger)
    assert core.licenses.owner() == stranger.address
    with ape.reverts(core.licenses.OwnableUnauthorizedAccount):
        core.licenses.setCurrencyAllowed(token, True, sender=deployer)
