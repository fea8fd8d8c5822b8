"""LicenseManager: terms, purchases (ERC-1155 licences), escrow, voucher settlement, allow-list.

Branch tree of settle (each leaf is a test below):
  caller is not the batch's service                   -> NotService
  no vouchers / more than MAX_VOUCHERS                -> BadBatchSize (MAX ok)
  wallet signatures out of order / naming no voucher  -> BadWalletSignature
  deadline passed                                     -> VoucherExpired
  terms unknown (terms 0 included)                    -> UnknownVoucherTerms
  signed for another asset than the terms'            -> WrongSigner
  terms in another currency                           -> CurrencyMismatch
  terms not metered                                   -> NotMetered
  cumulative > MAX_CUMULATIVE (== ok)                 -> AmountTooLarge
  cumulative == settled (replay, or settled first)    -> skipped: VoucherSkipped(AlreadySettled)
  cumulative < settled (a newer one settled first)    -> skipped: VoucherSkipped(BelowSettled)
  escrow with the service short                       -> skipped: VoucherSkipped(InsufficientEscrow)
  compact signature (EOA): high s                      -> MalleableSignature
             r = 0                                    -> BadSignature
             other signer / chain id / deployment     -> WrongSigner
  listed signature: more than MAX_WALLET_SIGNATURES   -> TooManyWalletSignatures
             not the payer's (bad shape, high s, a wallet that refuses, writes state, burns its
             gas or answers with a huge payload)      -> skipped: VoucherSkipped(WalletRejected)
  otherwise -> channel advanced, escrow debited, revenue credited to the asset
Skipped vouchers leave their channel and escrow as they were; the rest of the batch settles.

Escrow: one per (payer, currency, service); a withdrawal request unlocks after WITHDRAWAL_DELAY
and expires WITHDRAWAL_WINDOW later.
"""

from __future__ import annotations

import ape
import pytest
from eth_utils import keccak

from agents.core.vouchers import Voucher, compact_signature, settle_arguments, sign_voucher, voucher_digest
from tests.contracts.helpers import (
    ETH,
    SERVICE,
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
ALREADY_SETTLED, BELOW_SETTLED, INSUFFICIENT_ESCROW, WALLET_REJECTED = 0, 1, 2, 3  # ILicenseManager.SkipReason
ZERO32 = b"\x00" * 32
PRICE = 10**15
PER_USE = 10**12


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


@pytest.mark.smoke  # also on anvil
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


def test_deposit_and_delayed_withdrawal(core, payer, stranger, chain, service):
    receipt = core.licenses.deposit(ETH, SERVICE, 10**16, sender=payer, value=10**16)
    event = receipt.events.filter(core.licenses.EscrowDeposited)[0]
    assert event.balance == 10**16 and event.service == SERVICE
    assert core.splitter.reserveOf(ETH) == 10**16
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked, unlockAt=0):
        core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__ZeroAmount):
        core.licenses.requestWithdrawal(ETH, SERVICE, 0, sender=payer)
    core.licenses.requestWithdrawal(ETH, SERVICE, 4 * 10**15, sender=payer)
    _, pending, unlock = core.licenses.escrowOf(payer, ETH, SERVICE)
    assert pending == 4 * 10**15 and unlock == chain.blocks.head.timestamp + 86_400
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked):
        core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)
    chain.pending_timestamp += 86_400
    with ape.reverts(core.licenses.LicenseManager__ZeroRecipient):
        core.licenses.withdrawEscrow(ETH, SERVICE, ZERO_ADDRESS, sender=payer)
    before = stranger.balance
    core.licenses.withdrawEscrow(ETH, SERVICE, stranger, sender=payer)
    assert stranger.balance == before + 4 * 10**15
    assert core.licenses.escrowOf(payer, ETH, SERVICE) == (6 * 10**15, 0, 0)
    assert core.splitter.reserveOf(ETH) == 6 * 10**15


def test_withdrawal_request_expires_after_its_window(core, payer, chain):
    # A matured request is not a standing right: unwithdrawn for WITHDRAWAL_WINDOW after it
    # unlocks, it expires, and the payer must request (and wait) again.
    core.licenses.deposit(ETH, SERVICE, 100, sender=payer, value=100)
    core.licenses.requestWithdrawal(ETH, SERVICE, 60, sender=payer)
    _, _, unlock = core.licenses.escrowOf(payer, ETH, SERVICE)
    window = int(core.licenses.WITHDRAWAL_WINDOW())
    assert window == 7 * 86_400
    chain.pending_timestamp = unlock + window + 1
    with ape.reverts(core.licenses.LicenseManager__WithdrawalExpired, expiredAt=unlock + window):
        core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)
    # A new deposit does not revive it either; a new request starts a new delay.
    core.licenses.deposit(ETH, SERVICE, 50, sender=payer, value=50)
    with ape.reverts(core.licenses.LicenseManager__WithdrawalExpired):
        core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)
    core.licenses.requestWithdrawal(ETH, SERVICE, 60, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked):
        core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)
    _, _, unlock = core.licenses.escrowOf(payer, ETH, SERVICE)
    chain.pending_timestamp = unlock + window  # the last second of the window still counts
    receipt = core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)
    assert receipt.events.filter(core.licenses.EscrowWithdrawn)[0].amount == 60
    assert core.licenses.escrowOf(payer, ETH, SERVICE) == (90, 0, 0)


def test_escrow_withdrawals_are_per_service(core, payer, chain):
    other_service = "0x000000000000000000000000000000000000bEEF"
    core.licenses.deposit(ETH, SERVICE, 100, sender=payer, value=100)
    core.licenses.deposit(ETH, other_service, 30, sender=payer, value=30)
    core.licenses.requestWithdrawal(ETH, other_service, 1_000, sender=payer)
    chain.pending_timestamp += 86_400
    receipt = core.licenses.withdrawEscrow(ETH, other_service, payer, sender=payer)
    assert receipt.events.filter(core.licenses.EscrowWithdrawn)[0].amount == 30  # capped at that escrow
    assert core.licenses.escrowOf(payer, ETH, SERVICE) == (100, 0, 0)
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked, unlockAt=0):
        core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)


def test_cancel_withdrawal(core, payer, chain):
    core.licenses.deposit(ETH, SERVICE, 100, sender=payer, value=100)
    core.licenses.requestWithdrawal(ETH, SERVICE, 100, sender=payer)
    core.licenses.cancelWithdrawal(ETH, SERVICE, sender=payer)
    chain.pending_timestamp += 86_400
    with ape.reverts(core.licenses.LicenseManager__WithdrawalLocked, unlockAt=0):
        core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)


def test_deposit_reverts(project, core, deployer, payer, token):
    with ape.reverts(core.licenses.LicenseManager__ZeroAmount):
        core.licenses.deposit(ETH, SERVICE, 0, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__ZeroRecipient):
        core.licenses.deposit(ETH, ZERO_ADDRESS, 1, sender=payer, value=1)
    with ape.reverts(core.licenses.LicenseManager__WrongPayment, sent=1, due=2):
        core.licenses.deposit(ETH, SERVICE, 2, sender=payer, value=1)
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed):
        core.licenses.deposit(payer.address, SERVICE, 2, sender=payer)
    fot = deployer.deploy(project.FeeOnTransferToken)
    core.licenses.setCurrencyAllowed(fot, True, sender=deployer)
    fot.mint(payer, 1_000, sender=payer)
    fot.approve(core.licenses, 1_000, sender=payer)
    with ape.reverts(core.licenses.LicenseManager__TransferMismatch):
        core.licenses.deposit(fot, SERVICE, 1_000, sender=payer)


def test_deposit_stores_and_reports_the_whole_balance(core, payer, token):
    # Balances are full words: a balance past 2^192 (where a narrower record would truncate) is
    # stored whole, and the event reports what is stored.
    token.mint(payer, 2**192 + 5, sender=payer)
    token.approve(core.licenses, 2**192 + 5, sender=payer)
    core.licenses.deposit(token, SERVICE, 5, sender=payer)
    receipt = core.licenses.deposit(token, SERVICE, 2**192, sender=payer)
    assert receipt.events.filter(core.licenses.EscrowDeposited)[0].balance == 2**192 + 5
    assert core.licenses.escrowOf(payer, token, SERVICE)[0] == 2**192 + 5


def test_settlement_during_delay_comes_before_withdrawal(core, payer, asset, terms_id, chain, service):
    core.licenses.deposit(ETH, SERVICE, 10 * PER_USE, sender=payer, value=10 * PER_USE)
    core.licenses.requestWithdrawal(ETH, SERVICE, 10 * PER_USE, sender=payer)
    v = signed_voucher(
        core.licenses,
        chain.chain_id,
        payer,
        asset=asset,
        terms_id=terms_id,
        cumulative=7 * PER_USE,
        deadline=deadline(chain),
    )
    core.licenses.settle(ETH, SERVICE, [v], [], sender=service)
    chain.pending_timestamp += 86_400
    receipt = core.licenses.withdrawEscrow(ETH, SERVICE, payer, sender=payer)
    assert receipt.events.filter(core.licenses.EscrowWithdrawn)[0].amount == 3 * PER_USE


# --- settle -------------------------------------------------------------------------------


@pytest.fixture
def funded(core, payer, other_payer):  # type: ignore[no-untyped-def]
    for p in (payer, other_payer):
        core.licenses.deposit(ETH, SERVICE, 10**17, sender=p, value=10**17)


@pytest.mark.smoke  # also on anvil
def test_valid_voucher_settles_once(core, payer, stranger, asset, terms_id, funded, chain, service):
    v = signed_voucher(
        core.licenses,
        chain.chain_id,
        payer,
        asset=asset,
        terms_id=terms_id,
        cumulative=5 * PER_USE,
        deadline=deadline(chain),
    )
    receipt = core.licenses.settle(ETH, SERVICE, [v], [], sender=service)
    event = receipt.events.filter(core.licenses.VoucherSettled)[0]
    assert event.cumulativeAmount == 5 * PER_USE and event.payer == payer.address
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 5 * PER_USE
    assert core.licenses.escrowOf(payer, ETH, SERVICE)[0] == 10**17 - 5 * PER_USE
    assert core.splitter.pendingRevenueOf(asset, ETH) == 5 * PER_USE
    # A replay is skipped: nothing moves, and the call does not fail.
    replay = core.licenses.settle(ETH, SERVICE, [v], [], sender=service)
    (skipped,) = replay.events.filter(core.licenses.VoucherSkipped)
    assert skipped.reason == ALREADY_SETTLED and skipped.cumulativeAmount == 5 * PER_USE
    assert not replay.events.filter(core.licenses.VoucherSettled)
    assert not replay.events.filter(core.splitter.RevenueAdded)
    assert core.licenses.escrowOf(payer, ETH, SERVICE)[0] == 10**17 - 5 * PER_USE
    # The next voucher pays only the difference.
    v2 = signed_voucher(
        core.licenses,
        chain.chain_id,
        payer,
        asset=asset,
        terms_id=terms_id,
        cumulative=8 * PER_USE,
        deadline=deadline(chain),
    )
    core.licenses.settle(ETH, SERVICE, [v2], [], sender=service)
    assert core.splitter.pendingRevenueOf(asset, ETH) == 8 * PER_USE
    older = core.licenses.settle(ETH, SERVICE, [v], [], sender=service)
    assert older.events.filter(core.licenses.VoucherSkipped)[0].reason == BELOW_SETTLED
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 8 * PER_USE
    assert core.splitter.pendingRevenueOf(asset, ETH) == 8 * PER_USE


def test_settle_aggregates_runs_of_payers_and_assets(
    core, model_id, creator, payer, other_payer, asset, terms_id, funded, chain, service
):
    other = asset_record("other", creator, model_id)
    register_asset(core.provenance, creator, other)
    t2 = attach_terms(core.licenses, creator, other.content_digest)
    d = deadline(chain)
    vouchers = [
        signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=d),
        signed_voucher(
            core.licenses, chain.chain_id, payer, asset=other.content_digest, terms_id=t2, cumulative=2, deadline=d
        ),
        signed_voucher(
            core.licenses,
            chain.chain_id,
            other_payer,
            asset=other.content_digest,
            terms_id=t2,
            cumulative=4,
            deadline=d,
        ),
        signed_voucher(
            core.licenses, chain.chain_id, other_payer, asset=asset, terms_id=terms_id, cumulative=8, deadline=d
        ),
    ]
    core.licenses.settle(ETH, SERVICE, vouchers, [], sender=service)
    assert core.splitter.pendingRevenueOf(asset, ETH) == 9
    assert core.splitter.pendingRevenueOf(other.content_digest, ETH) == 6
    assert core.licenses.escrowOf(payer, ETH, SERVICE)[0] == 10**17 - 3
    assert core.licenses.escrowOf(other_payer, ETH, SERVICE)[0] == 10**17 - 12
    assert core.splitter.reserveOf(ETH) == 2 * 10**17 - 15


def test_settle_reverts_on_batch_size(core, payer, service):
    with ape.reverts(core.licenses.LicenseManager__BadBatchSize, count=0, maxCount=192):
        core.licenses.settle(ETH, SERVICE, [], [], sender=service)


def test_settle_reverts_on_expired_voucher(core, payer, asset, terms_id, funded, chain, service):
    past = chain.pending_timestamp - 1
    v = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=past
    )
    with ape.reverts(core.licenses.LicenseManager__VoucherExpired, index=0, deadline=past):
        core.licenses.settle(ETH, SERVICE, [v], [], sender=service)


def test_settle_reverts_on_terms_mismatch(core, creator, payer, asset, terms_id, funded, token, chain, service):
    d = deadline(chain)
    # The signature covers the terms' asset: a voucher signed for another asset fails as a forgery.
    wrong_asset = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=digest("x"), terms_id=terms_id, cumulative=1, deadline=d
    )
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, index=0, payer=payer.address):
        core.licenses.settle(ETH, SERVICE, [wrong_asset], [], sender=service)
    unknown = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=77, cumulative=1, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__UnknownVoucherTerms, index=0, termsId=77):
        core.licenses.settle(ETH, SERVICE, [unknown], [], sender=service)
    erc20_terms = attach_terms(core.licenses, creator, asset, currency=token.address)
    v = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=erc20_terms, cumulative=1, deadline=d
    )
    with ape.reverts(core.licenses.LicenseManager__CurrencyMismatch, termsCurrency=token.address, batchCurrency=ETH):
        core.licenses.settle(ETH, SERVICE, [v], [], sender=service)
    flat = attach_terms(core.licenses, creator, asset, price_per_use=0)
    v = signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=flat, cumulative=1, deadline=d)
    with ape.reverts(core.licenses.LicenseManager__NotMetered, termsId=flat):
        core.licenses.settle(ETH, SERVICE, [v], [], sender=service)


def test_settle_refuses_high_s_signatures(core, payer, asset, terms_id, funded, chain, service):
    v = Voucher(payer.address, SERVICE, asset, terms_id, 1, deadline(chain))
    sig = sign_voucher(v, payer.private_key, chain.chain_id, core.licenses.address)
    r, s, parity = sig[:32], int.from_bytes(sig[32:64], "big"), sig[64] - 27
    # The same signature with s' = n - s and v flipped recovers the same signer. In compact form
    # the top bit of vs carries v, so such an s cannot be written (EIP-2098); an s above n/2
    # that can is refused by name.
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([28 - parity])
    assert compact_signature(high) is None
    above_half = (SECP256K1_N // 2 + 1).to_bytes(32, "big")
    with ape.reverts(core.licenses.LicenseManager__MalleableSignature, index=0):
        core.licenses.settle(
            ETH, SERVICE, [(payer.address, terms_id, 1, v.deadline, r, above_half)], [], sender=service
        )
    # Listed (65 bytes) it does not hold either: the voucher is skipped, and nothing moves.
    listed = (payer.address, terms_id, 1, v.deadline, ZERO32, ZERO32)
    receipt = core.licenses.settle(ETH, SERVICE, [listed], [(0, high)], sender=service)
    assert receipt.events.filter(core.licenses.VoucherSkipped)[0].reason == WALLET_REJECTED
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 0


def test_a_voucher_signed_with_v_as_parity_settles_as_the_api_accepted_it(
    core, payer, asset, terms_id, funded, chain, service
):
    """Some wallets return v as 0 or 1. The API's paywall accepts such a voucher (it recovers the
    payer) and serves the content for it, so settlement must settle it, not list it as a wallet
    signature that an EOA payer cannot back (which the contract would skip: content for free)."""
    from agents.api.paywall import signer_of
    from agents.core.settlement import SignedVoucher

    v = Voucher(payer.address, SERVICE, asset, terms_id, 7, deadline(chain))
    sig = sign_voucher(v, payer.private_key, chain.chain_id, core.licenses.address)
    parity = sig[:64] + bytes([sig[64] - 27])
    assert signer_of(SignedVoucher(v, parity), chain.chain_id, core.licenses.address) == payer.address
    assert compact_signature(parity) == compact_signature(sig)
    calls, wallet_signatures = settle_arguments([(v, parity)])
    assert wallet_signatures == []
    receipt = core.licenses.settle(ETH, SERVICE, calls, wallet_signatures, sender=service)
    assert len(receipt.events.filter(core.licenses.VoucherSettled)) == 1
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 7


@pytest.mark.anvil
def test_a_payer_with_code_that_holds_its_key_settles_a_parity_signature(
    core, payer, asset, terms_id, funded, chain, service
):
    """An account with code that still signs with its key (an EIP-7702 account): the daemon lists
    its signature for the wallet path, where the contract tries ECDSA first. Signed with v as
    parity, which the paywall accepts, the listed signature must still recover the payer, or the
    contract falls back to ERC-1271, the code refuses, and the voucher is skipped: content for free."""
    if chain.provider.name != "foundry":
        pytest.skip("code at a keyed account needs anvil_setCode: runs in the anvil pass (make test-anvil)")
    chain.provider.make_request("anvil_setCode", [payer.address, "0x00"])  # code that accepts no signature
    try:
        v = Voucher(payer.address, SERVICE, asset, terms_id, 9, deadline(chain))
        sig = sign_voucher(v, payer.private_key, chain.chain_id, core.licenses.address)
        parity = sig[:64] + bytes([sig[64] - 27])
        calls, wallet_signatures = settle_arguments([(v, parity)], wallets={payer.address})
        assert wallet_signatures == [(0, sig)], "listed with v as 27 or 28"
        receipt = core.licenses.settle(ETH, SERVICE, calls, wallet_signatures, sender=service)
        assert len(receipt.events.filter(core.licenses.VoucherSettled)) == 1
        assert core.licenses.settledOf(payer, SERVICE, terms_id) == 9
    finally:
        chain.provider.make_request("anvil_setCode", [payer.address, "0x"])


def test_settle_refuses_unparseable_signatures(core, payer, asset, terms_id, funded, chain, service):
    v = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=deadline(chain)
    )
    # A compact signature with r = 0 recovers no one: the service's error, the batch reverts.
    with ape.reverts(core.licenses.LicenseManager__BadSignature, index=0):
        core.licenses.settle(ETH, SERVICE, [(*v[:4], ZERO32, v[5])], [], sender=service)
    # A listed signature that is not a signature of the payer (not 65 bytes, a bad v): it is the
    # payer's word that does not hold, as when a wallet (or an EIP-7702 account that dropped its
    # code) refuses, so the voucher is skipped and the batch goes on.
    full = sign_voucher(
        Voucher(payer.address, SERVICE, asset, terms_id, 1, v[3]),
        payer.private_key,
        chain.chain_id,
        core.licenses.address,
    )
    for bad in (full[:64], full[:64] + b"\x05", full + b"\x00"):
        receipt = core.licenses.settle(ETH, SERVICE, [v], [(0, bad)], sender=service)
        assert receipt.events.filter(core.licenses.VoucherSkipped)[0].reason == WALLET_REJECTED
    # The same signature listed whole is accepted: the list carries any signature shape.
    core.licenses.settle(ETH, SERVICE, [(*v[:4], ZERO32, ZERO32)], [(0, full)], sender=service)
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 1


def test_a_wallet_answering_with_a_huge_payload_costs_the_batch_only_its_capped_gas(
    project, core, payer, other_payer, asset, terms_id, funded, chain, service
):
    # The second review's R1: the wallet check copied the whole answer into memory, which the
    # batch pays for; a wallet answering with 150 KB (cheap within its 100k gas) made each such
    # voucher dearer than the last until the batch ran out of gas. Only 32 bytes are read now.
    cap = int(core.licenses.MAX_WALLET_SIGNATURES())
    d = deadline(chain)
    calls, wallets = [], []
    for i in range(cap):
        wallet = payer.deploy(project.TestWallet1271, payer.address)
        wallet.setMode(4, sender=payer)  # return bomb
        voucher = Voucher(wallet.address, SERVICE, asset, terms_id, 1, d)
        (call,), _ = settle_arguments([(voucher, b"\x01" * 65)], wallets={wallet.address})
        calls.append(call)
        wallets.append((i, b"\x01" * 65))
    honest = signed_voucher(
        core.licenses, chain.chain_id, other_payer, asset=asset, terms_id=terms_id, cumulative=PER_USE, deadline=d
    )
    receipt = core.licenses.settle(ETH, SERVICE, [*calls, honest], wallets, sender=service)
    assert len(receipt.events.filter(core.licenses.VoucherSkipped)) == cap
    assert core.licenses.settledOf(other_payer, SERVICE, terms_id) == PER_USE
    per_wallet = (receipt.gas_used - 100_000) / cap
    assert per_wallet < 160_000, per_wallet  # WALLET_CHECK_GAS plus the call's own cost, flat
    # One wallet signature past the cap is refused before anything is checked.
    with ape.reverts(core.licenses.LicenseManager__TooManyWalletSignatures, count=cap + 1, maxCount=cap):
        core.licenses.settle(ETH, SERVICE, [*calls, honest, honest], [*wallets, (cap, b"\x01" * 65)], sender=service)


def test_terms_id_past_every_terms_is_checked_too(core, payer, funded, chain, service):
    # The second review's R3: the batch's terms cache started at id 2^256 - 1 with asset 0, so
    # a voucher naming that id skipped every terms check. The cache answers only after a lookup.
    v = signed_voucher(
        core.licenses,
        chain.chain_id,
        payer,
        asset=b"\x00" * 32,
        terms_id=2**256 - 1,
        cumulative=1,
        deadline=deadline(chain),
    )
    with ape.reverts(core.licenses.LicenseManager__UnknownVoucherTerms, index=0, termsId=2**256 - 1):
        core.licenses.settle(ETH, SERVICE, [v], [], sender=service)


def test_only_the_service_settles_its_vouchers(
    core, creator, payer, stranger, asset, terms_id, model_id, chain, service
):
    # The review's drain: a payer with escrow at a service makes an asset and metered terms of
    # its own, signs a voucher naming the service for the whole escrow, and settles it itself,
    # emptying the escrow the service relies on before the service settles. Only the service
    # may settle what draws on its escrows.
    core.licenses.deposit(ETH, SERVICE, 10**15, sender=payer, value=10**15)
    own = asset_record("payer's own", payer, model_id)
    register_asset(core.provenance, payer, own)
    own_terms = attach_terms(core.licenses, payer, own.content_digest, price_per_use=1)
    drain = signed_voucher(
        core.licenses,
        chain.chain_id,
        payer,
        asset=own.content_digest,
        terms_id=own_terms,
        cumulative=10**15,
        deadline=deadline(chain),
    )
    for caller in (payer, stranger, creator):
        with ape.reverts(core.licenses.LicenseManager__NotService, caller=caller.address, service=SERVICE):
            core.licenses.settle(ETH, SERVICE, [drain], [], sender=caller)
    assert core.licenses.escrowOf(payer, ETH, SERVICE)[0] == 10**15


def test_settle_reverts_on_wrong_signer_chain_or_deployment(
    core, payer, other_payer, asset, terms_id, funded, chain, service
):
    d = deadline(chain)
    forged = signed_voucher(
        core.licenses,
        chain.chain_id,
        other_payer,
        payer=payer.address,
        asset=asset,
        terms_id=terms_id,
        cumulative=1,
        deadline=d,
    )
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, index=0, payer=payer.address):
        core.licenses.settle(ETH, SERVICE, [forged], [], sender=service)
    voucher = Voucher(payer.address, SERVICE, asset, terms_id, 1, d)
    other_chain = sign_voucher(voucher, payer.private_key, chain.chain_id + 1, core.licenses.address)
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, payer=payer.address):
        core.licenses.settle(ETH, SERVICE, *settle_arguments([(voucher, other_chain)]), sender=service)
    other_deployment = sign_voucher(voucher, payer.private_key, chain.chain_id, core.provenance.address)
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, payer=payer.address):
        core.licenses.settle(ETH, SERVICE, *settle_arguments([(voucher, other_deployment)]), sender=service)


def test_settle_skips_a_voucher_its_escrow_cannot_cover_and_settles_the_rest(
    core, payer, other_payer, asset, terms_id, chain, service
):
    core.licenses.deposit(ETH, SERVICE, 5, sender=payer, value=5)
    core.licenses.deposit(ETH, SERVICE, 10, sender=other_payer, value=10)
    d = deadline(chain)
    first = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=4, deadline=d
    )
    short = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=6, deadline=d
    )
    other = signed_voucher(
        core.licenses, chain.chain_id, other_payer, asset=asset, terms_id=terms_id, cumulative=7, deadline=d
    )
    # After `first` the channel stands at 4, so `short` needs 2 while 5 - 4 = 1 is left.
    receipt = core.licenses.settle(ETH, SERVICE, [first, short, other], [], sender=service)
    (skipped,) = receipt.events.filter(core.licenses.VoucherSkipped)
    assert skipped.payer == payer.address and skipped.reason == INSUFFICIENT_ESCROW and skipped.cumulativeAmount == 6
    assert [e.cumulativeAmount for e in receipt.events.filter(core.licenses.VoucherSettled)] == [4, 7]
    assert core.licenses.escrowOf(payer, ETH, SERVICE)[0] == 1
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 4
    assert core.splitter.pendingRevenueOf(asset, ETH) == 11


def test_a_front_runner_cannot_settle_and_a_voucher_settled_already_does_not_fail_the_batch(
    core, payer, other_payer, stranger, asset, terms_id, funded, chain, service
):
    # The operator's pending batch is public in the mempool. The review's griefing (a stranger
    # settles one of its vouchers first, reverting the whole batch) is closed twice: a stranger
    # cannot settle the service's vouchers at all, and a voucher settled already (by an earlier
    # batch of the service's, say one resent after a dropped transaction) is skipped while every
    # other voucher settles, nothing paid twice.
    d = deadline(chain)
    batch = [
        signed_voucher(
            core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=3 * PER_USE, deadline=d
        ),
        signed_voucher(
            core.licenses,
            chain.chain_id,
            other_payer,
            asset=asset,
            terms_id=terms_id,
            cumulative=5 * PER_USE,
            deadline=d,
        ),
    ]
    with ape.reverts(core.licenses.LicenseManager__NotService):
        core.licenses.settle(ETH, SERVICE, [batch[1]], [], sender=stranger)
    core.licenses.settle(ETH, SERVICE, [batch[1]], [], sender=service)
    receipt = core.licenses.settle(ETH, SERVICE, batch, [], sender=service)
    (skipped,) = receipt.events.filter(core.licenses.VoucherSkipped)
    assert skipped.payer == other_payer.address and skipped.reason == ALREADY_SETTLED
    (settled,) = receipt.events.filter(core.licenses.VoucherSettled)
    assert settled.payer == payer.address
    assert core.splitter.pendingRevenueOf(asset, ETH) == 8 * PER_USE
    assert core.licenses.escrowOf(other_payer, ETH, SERVICE)[0] == 10**17 - 5 * PER_USE
    # Even a batch whose every voucher was front-run succeeds, settling nothing.
    again = core.licenses.settle(ETH, SERVICE, batch, [], sender=service)
    assert len(again.events.filter(core.licenses.VoucherSkipped)) == 2
    assert core.splitter.pendingRevenueOf(asset, ETH) == 8 * PER_USE


def test_escrow_is_per_service_so_one_deposit_cannot_be_promised_twice(
    core, payer, asset, terms_id, chain, service, stranger
):
    # The payer funds service A only. Service B (the stranger) settling vouchers that name it
    # draws on the payer's (empty) escrow with B: they are skipped, and A's escrow is untouched.
    other_service = stranger.address
    core.licenses.deposit(ETH, SERVICE, 10, sender=payer, value=10)
    d = deadline(chain)
    to_b = signed_voucher(
        core.licenses,
        chain.chain_id,
        payer,
        service=other_service,
        asset=asset,
        terms_id=terms_id,
        cumulative=10,
        deadline=d,
    )
    receipt = core.licenses.settle(ETH, other_service, [to_b], [], sender=stranger)
    assert receipt.events.filter(core.licenses.VoucherSkipped)[0].reason == INSUFFICIENT_ESCROW
    assert core.licenses.escrowOf(payer, ETH, SERVICE)[0] == 10
    assert core.licenses.escrowOf(payer, ETH, other_service)[0] == 0
    # Channels are per service too: A's voucher for the same terms is a channel of its own.
    to_a = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=10, deadline=d
    )
    core.licenses.settle(ETH, SERVICE, [to_a], [], sender=service)
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 10
    assert core.licenses.settledOf(payer, other_service, terms_id) == 0
    # The service is part of what the payer signed: B settling A's voucher as its own (the
    # payer funded B too) fails as a forgery.
    core.licenses.deposit(ETH, other_service, 10, sender=payer, value=10)
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, index=0, payer=payer.address):
        core.licenses.settle(ETH, other_service, [to_a], [], sender=stranger)


def test_vouchers_on_deactivated_terms_still_settle(core, creator, payer, asset, terms_id, funded, chain, service):
    # Deactivation stops new sales; a voucher for uses already served is still owed.
    core.licenses.setTermsActive(terms_id, False, sender=creator)
    v = signed_voucher(
        core.licenses,
        chain.chain_id,
        payer,
        asset=asset,
        terms_id=terms_id,
        cumulative=2 * PER_USE,
        deadline=deadline(chain),
    )
    core.licenses.settle(ETH, SERVICE, [v], [], sender=service)
    assert core.licenses.settledOf(payer, SERVICE, terms_id) == 2 * PER_USE


def test_python_digest_matches_contract(core, payer, asset, terms_id, chain, service):
    voucher = Voucher(payer.address, SERVICE, asset, terms_id, 42, 1_000)
    assert core.licenses.voucherDigest(payer, SERVICE, asset, terms_id, 42, 1_000) == voucher_digest(
        voucher, chain.chain_id, core.licenses.address
    )
    typehash = keccak(
        text="Voucher(address payer,address service,bytes32 asset,uint256 termsId,"
        "uint256 cumulativeAmount,uint256 deadline)"
    )
    assert core.licenses.VOUCHER_TYPEHASH() == typehash


def test_erc1271_wallet_payer(project, core, payer, other_payer, asset, terms_id, funded, chain, service):
    # A wallet payer's signature travels in the wallet list. A wallet that refuses (it may
    # change its mind after the service served the uses), writes state while validating, or
    # burns all the gas it is given is skipped; it cannot fail the batch, and an honest voucher
    # beside it settles. Burning is bounded by WALLET_CHECK_GAS.
    wallet = payer.deploy(project.TestWallet1271, payer.address)
    wallet.exec(core.licenses, core.licenses.deposit.encode_input(ETH, SERVICE, 1_000), sender=payer, value=1_000)
    d = deadline(chain)
    voucher = Voucher(wallet.address, SERVICE, asset, terms_id, 10, d)
    owner_signature = sign_voucher(voucher, payer.private_key, chain.chain_id, core.licenses.address)
    calls, wallets = settle_arguments([(voucher, owner_signature)], wallets={wallet.address})
    assert wallets == [(0, owner_signature)] and calls[0][4:] == (ZERO32, ZERO32)
    for mode in (1, 2, 3):  # reject all; write state under STATICCALL; burn all gas
        wallet.setMode(mode, sender=payer)
        honest = signed_voucher(
            core.licenses,
            chain.chain_id,
            other_payer,
            asset=asset,
            terms_id=terms_id,
            cumulative=mode * PER_USE,
            deadline=d,
        )
        receipt = core.licenses.settle(ETH, SERVICE, [calls[0], honest], wallets, sender=service)
        (skipped,) = receipt.events.filter(core.licenses.VoucherSkipped)
        assert (skipped.payer, skipped.reason) == (wallet.address, WALLET_REJECTED)
        assert core.licenses.settledOf(wallet, SERVICE, terms_id) == 0
        assert receipt.gas_used < 1_000_000
    assert core.licenses.settledOf(other_payer, SERVICE, terms_id) == 3 * PER_USE
    wallet.setMode(0, sender=payer)
    core.licenses.settle(ETH, SERVICE, calls, wallets, sender=service)
    assert core.licenses.settledOf(wallet, SERVICE, terms_id) == 10
    assert core.licenses.escrowOf(wallet, ETH, SERVICE)[0] == 990
    assert wallet.writes() == 0
    # A wallet payer's voucher sent in compact form (no list entry) is refused as a forgery.
    compact = (wallet.address, terms_id, 20, d, owner_signature[:32], owner_signature[32:64])
    with ape.reverts(core.licenses.LicenseManager__WrongSigner, index=0, payer=wallet.address):
        core.licenses.settle(ETH, SERVICE, [compact], [], sender=service)


def test_wallet_signatures_must_name_vouchers_in_order(core, payer, asset, terms_id, funded, chain, service):
    v = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=1, deadline=deadline(chain)
    )
    sig = b"\x01" * 65
    for listed, position in (([(2, sig)], 0), ([(0, sig), (0, sig)], 1), ([(1, sig), (0, sig)], 1)):
        with ape.reverts(core.licenses.LicenseManager__BadWalletSignature, position=position):
            core.licenses.settle(ETH, SERVICE, [v, v], listed, sender=service)


def test_terms_id_zero_is_checked_like_any_other(core, payer, funded, chain, service):
    # The review's F8: the batch's terms cache started at id 0, so a voucher naming terms 0
    # skipped every terms check and "settled" into asset 0's revenue. Terms 0 do not exist.
    v = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=b"\x00" * 32, terms_id=0, cumulative=1_000, deadline=deadline(chain)
    )
    with ape.reverts(core.licenses.LicenseManager__UnknownVoucherTerms, index=0, termsId=0):
        core.licenses.settle(ETH, SERVICE, [v], [], sender=service)


def test_channel_amounts_at_and_past_the_bound(core, payer, asset, terms_id, chain, service):
    bound = int(core.licenses.MAX_CUMULATIVE())
    assert bound == 2**85 - 1
    core.licenses.deposit(ETH, SERVICE, 10**18, sender=payer, value=10**18)
    d = deadline(chain)
    past = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=bound + 1, deadline=d
    )
    with ape.reverts(
        core.licenses.LicenseManager__AmountTooLarge, index=0, cumulativeAmount=bound + 1, maxAmount=bound
    ):
        core.licenses.settle(ETH, SERVICE, [past], [], sender=service)
    at = signed_voucher(
        core.licenses, chain.chain_id, payer, asset=asset, terms_id=terms_id, cumulative=bound, deadline=d
    )
    receipt = core.licenses.settle(ETH, SERVICE, [at], [], sender=service)
    assert receipt.events.filter(core.licenses.VoucherSkipped)[0].reason == INSUFFICIENT_ESCROW


def test_channels_sharing_a_word_keep_their_own_amounts(core, creator, payer, asset, terms_id, chain, service):
    # Three channels of a payer share a storage word (terms 3k..3k+2): each keeps its amount.
    ids = [terms_id] + [attach_terms(core.licenses, creator, asset) for _ in range(4)]
    core.licenses.deposit(ETH, SERVICE, 10**18, sender=payer, value=10**18)
    d = deadline(chain)
    amounts = {t: (i + 1) * 10**14 + i for i, t in enumerate(ids)}
    batch = [
        signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=t, cumulative=a, deadline=d)
        for t, a in amounts.items()
    ]
    core.licenses.settle(ETH, SERVICE, batch, [], sender=service)
    assert {t: core.licenses.settledOf(payer, SERVICE, t) for t in ids} == amounts
    raised = {t: a + 7 for t, a in list(amounts.items())[1:3]}
    more = [
        signed_voucher(core.licenses, chain.chain_id, payer, asset=asset, terms_id=t, cumulative=a, deadline=d)
        for t, a in raised.items()
    ]
    core.licenses.settle(ETH, SERVICE, more, [], sender=service)
    assert {t: core.licenses.settledOf(payer, SERVICE, t) for t in ids} == {**amounts, **raised}
    assert core.splitter.pendingRevenueOf(asset, ETH) == sum(amounts.values()) + 14


@pytest.mark.slow
def test_settle_at_max_vouchers_in_the_dearest_case_costs_under_half_a_block(
    project, accounts, core, creator, model_id, chain, service
):
    # The dearest batch: every voucher from its own payer, for its own asset that has no pending
    # revenue, opening a new channel, so nothing aggregates and every slot is cold or fresh; and
    # MAX_WALLET_SIGNATURES of them from wallets that burn all the gas they are given.
    cap = int(core.licenses.MAX_VOUCHERS())
    wallet_cap = int(core.licenses.MAX_WALLET_SIGNATURES())
    payers = [accounts.generate_test_account() for _ in range(cap - wallet_cap)]
    d = deadline(chain)
    signed = []
    for i, p in enumerate(payers):
        creator.transfer(p, 10**18)
        core.licenses.deposit(ETH, SERVICE, 10**15, sender=p, value=10**15)
        rec = asset_record(f"cap{i}", creator, model_id)
        register_asset(core.provenance, creator, rec)
        terms_id = attach_terms(core.licenses, creator, rec.content_digest)
        voucher = Voucher(p.address, SERVICE, rec.content_digest, terms_id, PER_USE, d)
        signed.append((voucher, sign_voucher(voucher, p.private_key, chain.chain_id, core.licenses.address)))
    wallets = set()
    for i in range(wallet_cap):
        wallet = creator.deploy(project.TestWallet1271, creator.address)
        wallet.exec(
            core.licenses, core.licenses.deposit.encode_input(ETH, SERVICE, 10**15), sender=creator, value=10**15
        )
        wallet.setMode(3, sender=creator)  # burn all gas
        rec = asset_record(f"cap-wallet{i}", creator, model_id)
        register_asset(core.provenance, creator, rec)
        terms_id = attach_terms(core.licenses, creator, rec.content_digest)
        signed.append((Voucher(wallet.address, SERVICE, rec.content_digest, terms_id, PER_USE, d), b"\x01" * 65))
        wallets.add(wallet.address)
    vouchers, wallet_signatures = settle_arguments(signed, wallets=wallets)
    assert len(vouchers) == cap and len(wallet_signatures) == wallet_cap
    receipt = core.licenses.settle(ETH, SERVICE, vouchers, wallet_signatures, sender=service)
    assert receipt.gas_used < 15_000_000, receipt.gas_used
    assert len(receipt.events.filter(core.splitter.RevenueAdded)) == cap - wallet_cap, "no run aggregated"
    assert len(receipt.events.filter(core.licenses.VoucherSkipped)) == wallet_cap
    extra = vouchers[0]
    with ape.reverts(core.licenses.LicenseManager__BadBatchSize, count=cap + 1, maxCount=cap):
        core.licenses.settle(ETH, SERVICE, [*vouchers, extra], wallet_signatures, sender=service)


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
