"""Attacks on push payments (x402 `exact`): DevUsd's EIP-3009 authorizations, each asset's
PaymentReceiver and `LicenseManager.sweepPayments`. A passing test is an attack that fails; an
attack the review found working was fixed (credit at most what the receiver sent; one receiver
per asset for every token), and its test now passes.

  DevUsd
    moving a receiver's tokens with an authorization "from" the receiver (before or after it
      exists), or with transferFrom                                    -> refused
    one authorization on another DevUsd deployment (same name, version, chain); a cancellation
      on another deployment                                            -> refused
    other encodings of one signature (high s, v in {0, 1}, EIP-2098 64-byte, padded)
                                                                       -> refused; the original moves once
    cancel after use, a cancellation signed for another nonce           -> refused
    ERC-1271 payers: paid through either overload; a signature for one wallet replayed for
      another of the same owner, or the owner's own EOA authorization -> refused; a wallet that
      rejects, answers 150 KB or burns its gas                         -> refused
  sweepPayments
    a front-runner's sweep, a donation straight to the splitter, escrow of the same token
                                                                       -> only what the receiver held is credited, once
    sweeps, distributions and withdrawals keep the splitter's books: claims == deposited - withdrawn
    a token re-entering the licence manager from its transfer          -> nonReentrant refuses; credited once
    a token paying the splitter from its transfer (double count)       -> credited what the receiver sent,
                                                                          with or without a surplus there
    payments waiting when the record is taken over                     -> the new record's split
    a token taken off the allow-list while payments wait               -> they wait, and are swept once it is back
    a no-return (USDT-style) token                                     -> swept through SafeERC20
    a payment in another token to the receiver                         -> swept in that token (one receiver per asset)
    gas of the first sweep (deploys the receiver) and of later ones    -> bounded
"""

from __future__ import annotations

import contextlib
from dataclasses import replace
from typing import Any

import ape
import pytest
from ape.exceptions import ContractLogicError
from eth_utils import keccak, to_checksum_address

from agents.core.merkle import BatchTree
from tests.contracts.helpers import (
    SERVICE,
    asset_record,
    authorization_args,
    digest,
    eip3009_authorization,
    register_asset,
    sign_eip3009,
    vrs,
)

pytestmark = pytest.mark.chain

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DOLLAR = 10**6
REENTRANT_CALL = keccak(b"ReentrancyGuardReentrantCall()")[:4]


@pytest.fixture
def hook(project, deployer, core):  # type: ignore[no-untyped-def]
    """A hostile ERC-20, allow-listed (contracts/test/HookToken.sol: an owner could be fooled)."""
    token = deployer.deploy(project.HookToken)
    core.licenses.setCurrencyAllowed(token, True, sender=deployer)
    return token


@pytest.fixture
def other_asset(core, model_id, creator) -> bytes:  # type: ignore[no-untyped-def]
    record = asset_record("pushed/attacks/other", creator, model_id)
    register_asset(core.provenance, creator, record)
    return record.content_digest


def sign(
    token: Any,
    key: Any,
    payer: str,
    to: str,
    value: int,
    *,
    nonce: bytes | None = None,
    primary: str = "TransferWithAuthorization",
) -> tuple[list[Any], bytes]:
    """(transferWithAuthorization's arguments before the signature, the 65-byte signature by `key`)."""
    message, signature = eip3009_authorization(token, key, payer, to, value, nonce=nonce, primary=primary)
    return authorization_args(message), signature


def sign_cancel(token: Any, key: Any, authorizer: str, nonce: bytes) -> bytes:
    return sign_eip3009(
        token, key, "CancelAuthorization", {"authorizer": to_checksum_address(authorizer), "nonce": nonce}
    )


def pay(usd: Any, payer: Any, to: str, value: int, submitter: Any) -> None:
    fields, signature = sign(usd, payer.private_key, payer.address, to, value)
    usd.transferWithAuthorization(*fields, signature, sender=submitter)


# --- DevUsd -----------------------------------------------------------------------------------


def test_nobody_moves_a_receivers_tokens_with_an_authorization_or_an_allowance(
    core, usd, deployer, payer, stranger, asset
):
    receiver = core.licenses.paymentReceiverOf(asset)
    usd.mint(payer, 5 * DOLLAR, sender=deployer)
    pay(usd, payer, receiver, 5 * DOLLAR, stranger)
    for deployed in (False, True):
        # Before it exists the address has no key (ECDSA path); after, it has no isValidSignature
        # (ERC-1271 path): neither a stranger's signature nor garbage passes for it.
        fields, by_stranger = sign(usd, stranger.private_key, receiver, stranger.address, DOLLAR)
        for signature in (by_stranger, bytes(65), b"\x01" * 64 + b"\x1b"):
            with ape.reverts(usd.DevUsd__BadSignature, authorizer=receiver):
                usd.transferWithAuthorization(*fields, signature, sender=stranger)
        with ape.reverts(usd.DevUsd__BadSignature, authorizer=receiver):
            usd.transferWithAuthorization(*fields, *vrs(by_stranger), sender=stranger)
        with ape.reverts(usd.ERC20InsufficientAllowance):
            usd.transferFrom(receiver, stranger, 1, sender=stranger)
        if not deployed:
            core.licenses.sweepPayments(asset, usd, sender=stranger)
            assert len(ape.chain.provider.get_code(receiver)) > 0
            usd.mint(receiver, DOLLAR, sender=deployer)
    assert usd.balanceOf(stranger) == 0 and usd.balanceOf(receiver) == DOLLAR
    assert core.splitter.pendingRevenueOf(asset, usd) == 5 * DOLLAR


def test_an_authorization_or_a_cancellation_does_not_replay_on_another_deployment(
    project, usd, deployer, payer, stranger
):
    twin = deployer.deploy(project.DevUsd, deployer)  # same name, version and chain; another address
    usd.mint(payer, DOLLAR, sender=deployer)
    twin.mint(payer, DOLLAR, sender=deployer)
    fields, signature = sign(usd, payer.private_key, payer.address, stranger.address, 10)
    with ape.reverts(twin.DevUsd__BadSignature, authorizer=payer.address):
        twin.transferWithAuthorization(*fields, signature, sender=stranger)
    cancel = sign_cancel(twin, payer.private_key, payer.address, fields[5])
    with ape.reverts(usd.DevUsd__BadSignature):  # twin's cancellation does not cancel here
        usd.cancelAuthorization(payer, fields[5], *vrs(cancel), sender=stranger)
    usd.transferWithAuthorization(*fields, signature, sender=stranger)
    assert usd.balanceOf(stranger) == 10 and twin.balanceOf(stranger) == 0
    twin.cancelAuthorization(payer, fields[5], *vrs(cancel), sender=stranger)  # twin's own nonce space
    assert twin.authorizationState(payer, fields[5])


def test_other_encodings_of_one_signature_are_refused_and_the_original_moves_once(
    core, usd, deployer, payer, stranger, asset
):
    usd.mint(payer, DOLLAR, sender=deployer)
    receiver = core.licenses.paymentReceiverOf(asset)
    fields, signature = sign(usd, payer.private_key, payer.address, receiver, 10)
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high_s = (SECP256K1_N - s).to_bytes(32, "big")
    with ape.reverts(usd.DevUsd__BadSignature):  # high s, v flipped: the v,r,s overload
        usd.transferWithAuthorization(*fields, 55 - v, r, high_s, sender=stranger)
    with ape.reverts(usd.DevUsd__BadSignature):  # v as 0/1 (not normalized, as USDC)
        usd.transferWithAuthorization(*fields, v - 27, r, signature[32:64], sender=stranger)
    compact = r + ((v - 27) << 255 | s).to_bytes(32, "big")  # EIP-2098
    for other in (compact, signature + b"\x00", r + high_s + bytes([55 - v])):
        with ape.reverts(usd.DevUsd__BadSignature):
            usd.transferWithAuthorization(*fields, other, sender=stranger)
    usd.transferWithAuthorization(*fields, *vrs(signature), sender=stranger)
    with ape.reverts(usd.DevUsd__AuthorizationUsed):
        usd.transferWithAuthorization(*fields, signature, sender=stranger)
    assert usd.balanceOf(receiver) == 10


def test_cancel_races_have_one_winner(usd, deployer, payer, stranger):
    usd.mint(payer, DOLLAR, sender=deployer)
    used, signature = sign(usd, payer.private_key, payer.address, stranger.address, 10)
    usd.transferWithAuthorization(*used, signature, sender=stranger)
    # The payer loses the race: its cancellation of a used authorization reverts.
    cancel = sign_cancel(usd, payer.private_key, payer.address, used[5])
    with ape.reverts(usd.DevUsd__AuthorizationUsed, authorizer=payer.address, nonce=used[5]):
        usd.cancelAuthorization(payer, used[5], *vrs(cancel), sender=payer)
    # A cancellation signed for one nonce cancels no other.
    pending, signature = sign(usd, payer.private_key, payer.address, stranger.address, 10)
    with ape.reverts(usd.DevUsd__BadSignature):
        usd.cancelAuthorization(payer, pending[5], *vrs(cancel), sender=stranger)
    assert not usd.authorizationState(payer, pending[5])
    usd.transferWithAuthorization(*pending, signature, sender=stranger)
    assert usd.balanceOf(stranger) == 20 and usd.balanceOf(payer) == DOLLAR - 20


def test_erc1271_payers_pay_once_and_cannot_be_impersonated(project, core, usd, deployer, payer, stranger, asset):
    wallet = deployer.deploy(project.TestWallet1271, payer)  # the payer's key signs for it
    twin = deployer.deploy(project.TestWallet1271, payer)  # another wallet of the same owner
    receiver = core.licenses.paymentReceiverOf(asset)
    for holder in (wallet, twin, payer):
        usd.mint(holder, DOLLAR, sender=deployer)
    fields, signature = sign(usd, payer.private_key, wallet.address, receiver, 100)
    usd.transferWithAuthorization(*fields, signature, sender=stranger)  # bytes overload
    fields, signature = sign(usd, payer.private_key, wallet.address, receiver, 200)
    usd.transferWithAuthorization(*fields, *vrs(signature), sender=stranger)  # v,r,s overload
    with ape.reverts(usd.DevUsd__AuthorizationUsed):
        usd.transferWithAuthorization(*fields, signature, sender=stranger)
    # The same signature for the twin wallet (the digest names the wallet) is refused ...
    with ape.reverts(usd.DevUsd__BadSignature, authorizer=twin.address):
        usd.transferWithAuthorization(twin.address, *fields[1:], signature, sender=stranger)
    # ... and so is the owner's authorization of its own EOA's money, used as the wallet's.
    own, by_owner = sign(usd, payer.private_key, payer.address, receiver, 300)
    with ape.reverts(usd.DevUsd__BadSignature, authorizer=wallet.address):
        usd.transferWithAuthorization(wallet.address, *own[1:], by_owner, sender=stranger)
    # A wallet that refuses, answers 150 KB, or burns the gas it is given pays nothing.
    for mode in (1, 4, 3):  # RejectAll, ReturnBomb, BurnGas
        twin.setMode(mode, sender=deployer)
        fields, signature = sign(usd, payer.private_key, twin.address, receiver, 400)
        with ape.reverts():
            usd.transferWithAuthorization(*fields, signature, sender=stranger, gas=3_000_000)
    assert usd.balanceOf(twin) == DOLLAR and usd.balanceOf(payer) == DOLLAR
    receipt = core.licenses.sweepPayments(asset, usd, sender=stranger)
    assert receipt.events.filter(core.licenses.PaymentsSwept)[0].amount == 300


# --- sweeps -----------------------------------------------------------------------------------


def _outstanding(core: Any, token: Any, assets: list[bytes], holders: list[Any], model_id: int) -> int:
    """Everything the splitter owes in `token`: balances, the data pool's unpaid part, dust,
    the escrow reserve and revenue not distributed yet."""
    pool, paid = core.splitter.dataPoolOf(model_id, token)
    return (
        sum(core.splitter.balanceOf(h, token) for h in holders)
        + pool
        - paid
        + core.splitter.dustOf(token)
        + core.splitter.reserveOf(token)
        + sum(core.splitter.pendingRevenueOf(a, token) for a in assets)
    )


def test_only_what_the_receiver_held_is_credited_once_whatever_else_reaches_the_splitter(
    core, usd, deployer, payer, stranger, asset, other_asset, creator
):
    # Escrow in the same token sits in the splitter's reserve; a stranger donates straight to
    # the splitter; a front-runner sweeps before the honest sweeper.
    usd.mint(payer, 10 * DOLLAR, sender=deployer)
    usd.approve(core.licenses, 4 * DOLLAR, sender=payer)
    core.licenses.deposit(usd, SERVICE, 4 * DOLLAR, sender=payer)
    usd.mint(core.splitter, 7, sender=deployer)  # a donation: nobody's
    receiver = core.licenses.paymentReceiverOf(asset)
    pay(usd, payer, receiver, 3 * DOLLAR, stranger)
    receipt = core.licenses.sweepPayments(asset, usd, sender=stranger)  # the front-runner
    assert receipt.events.filter(core.licenses.PaymentsSwept)[0].amount == 3 * DOLLAR
    with ape.reverts(core.licenses.LicenseManager__NothingToSweep):  # the honest sweeper loses nothing
        core.licenses.sweepPayments(asset, usd, sender=creator)
    with ape.reverts(core.licenses.LicenseManager__NothingToSweep):  # the donation is no one's revenue
        core.licenses.sweepPayments(other_asset, usd, sender=stranger)
    assert core.splitter.pendingRevenueOf(asset, usd) == 3 * DOLLAR
    assert core.splitter.pendingRevenueOf(other_asset, usd) == 0
    assert core.splitter.reserveOf(usd) == 4 * DOLLAR
    deposited, withdrawn = core.splitter.totalsOf(usd)
    assert deposited - withdrawn == 7 * DOLLAR
    assert usd.balanceOf(core.splitter) == 7 * DOLLAR + 7


def test_sweeps_distributions_and_withdrawals_keep_the_splitters_books(
    core, usd, deployer, payer, stranger, asset, other_asset, creator, developer, treasury, model_id
):
    usd.mint(payer, 100 * DOLLAR, sender=deployer)
    assets = [asset, other_asset]
    holders = [creator, developer, treasury]
    # Many small payments (dust included) to both receivers, swept and split in between.
    for i, value in enumerate((1, 3, 999_999, 7, DOLLAR + 1, 13, 2 * DOLLAR, 1)):
        target = assets[i % 2]
        pay(usd, payer, core.licenses.paymentReceiverOf(target), value, stranger)
        core.licenses.sweepPayments(target, usd, sender=stranger)
        if i % 3 == 2:
            core.splitter.distribute(target, usd, sender=stranger)
        deposited, withdrawn = core.splitter.totalsOf(usd)
        assert _outstanding(core, usd, assets, holders, model_id) == deposited - withdrawn
        assert usd.balanceOf(core.splitter) >= deposited - withdrawn
    for target in assets:
        with contextlib.suppress(ContractLogicError):
            core.splitter.distribute(target, usd, sender=stranger)
    for holder in holders:
        core.splitter.withdraw(usd, holder, sender=holder)
    deposited, withdrawn = core.splitter.totalsOf(usd)
    assert deposited == 1 + 3 + 999_999 + 7 + DOLLAR + 1 + 13 + 2 * DOLLAR + 1
    assert _outstanding(core, usd, assets, holders, model_id) == deposited - withdrawn
    assert usd.balanceOf(core.splitter) == deposited - withdrawn
    assert sum(usd.balanceOf(h) for h in holders) == withdrawn


def test_a_token_reentering_the_licence_manager_from_a_sweep_is_refused(core, hook, stranger, asset, other_asset):
    receiver = core.licenses.paymentReceiverOf(asset)
    hook.mint(core.licenses.paymentReceiverOf(other_asset), 50, sender=stranger)
    reentries = (
        core.licenses.sweepPayments.encode_input(other_asset, hook),
        core.licenses.deposit.encode_input(hook, SERVICE, 1),
    )
    for data in reentries:
        hook.mint(receiver, 1_000, sender=stranger)
        hook.arm(receiver, core.licenses, data, sender=stranger)  # (first armed before the receiver exists)
        core.licenses.sweepPayments(asset, hook, sender=stranger)
        assert hook.hookCalled() and not hook.hookOk()
        assert bytes(hook.hookReturn())[:4] == REENTRANT_CALL
    assert core.splitter.pendingRevenueOf(asset, hook) == 2_000
    assert core.splitter.pendingRevenueOf(other_asset, hook) == 0
    assert hook.balanceOf(core.splitter) == 2_000


def test_a_token_paying_the_splitter_from_a_sweep_is_credited_once_without_a_surplus(
    core, hook, stranger, asset, other_asset
):
    receiver = core.licenses.paymentReceiverOf(asset)
    hook.mint(receiver, 1_000, sender=stranger)
    hook.mint(hook, 400, sender=stranger)  # the token pays 400 to another asset mid-sweep
    hook.arm(receiver, core.splitter, core.splitter.pay.encode_input(other_asset, hook, 400), sender=stranger)
    # The splitter saw 1,400 arrive, 400 of them credited by `pay` already: the sweep credits what
    # the receiver sent, 1,000, and the books hold exactly what arrived.
    core.licenses.sweepPayments(asset, hook, sender=stranger)
    assert hook.hookOk()
    assert core.splitter.pendingRevenueOf(asset, hook) == 1_000
    assert core.splitter.pendingRevenueOf(other_asset, hook) == 400
    assert hook.balanceOf(core.splitter) == 1_400 and hook.balanceOf(receiver) == 0


def test_a_token_paying_the_splitter_from_a_sweep_is_credited_once_with_a_donated_surplus(
    core, hook, stranger, asset, other_asset
):
    receiver = core.licenses.paymentReceiverOf(asset)
    hook.mint(core.splitter, 400, sender=stranger)  # somebody's mistaken transfer: nobody's money
    hook.mint(receiver, 1_000, sender=stranger)
    hook.mint(hook, 400, sender=stranger)
    hook.arm(receiver, core.splitter, core.splitter.pay.encode_input(other_asset, hook, 400), sender=stranger)
    core.licenses.sweepPayments(asset, hook, sender=stranger)
    assert hook.hookOk()
    assert core.splitter.pendingRevenueOf(other_asset, hook) == 400
    # The receiver sent 1,000; the asset must be credited 1,000, not 1,400.
    assert core.splitter.pendingRevenueOf(asset, hook) == 1_000


def test_payments_waiting_when_the_record_is_taken_over_go_to_the_new_record(
    core, usd, deployer, payer, model_id, creator, stranger
):
    alice, mallory = creator, stranger
    member = asset_record("pushed/committed", alice, model_id)
    tree = BatchTree([member.leaf()])
    receipt = core.provenance.registerBatchLeaves(list(tree.leaves), sender=alice)
    batch = int(receipt.events.filter(core.provenance.BatchCommitted)[0].batchId)
    squat = replace(member, creator=mallory.address, input_commitment=digest("mallory's commitment"))
    register_asset(core.provenance, mallory, squat)
    receiver = core.licenses.paymentReceiverOf(member.content_digest)
    usd.mint(payer, 10 * DOLLAR, sender=deployer)
    # Paid and swept while Mallory holds the record: split by her record (as vouchers settled then).
    pay(usd, payer, receiver, DOLLAR, payer)
    core.licenses.sweepPayments(member.content_digest, usd, sender=mallory)
    core.splitter.distribute(member.content_digest, usd, sender=mallory)
    mallorys = core.splitter.balanceOf(mallory, usd)
    # Paid but not swept when Alice's claim takes the record over: Alice's.
    pay(usd, payer, receiver, 2 * DOLLAR, payer)
    core.provenance.claimFromBatch(batch, 0, member.as_tuple(), tree.proof(0), [], sender=alice)
    assert core.provenance.creatorOf(member.content_digest) == alice.address
    assert core.licenses.paymentReceiverOf(member.content_digest) == receiver  # the same address
    core.licenses.sweepPayments(member.content_digest, usd, sender=mallory)
    core.splitter.distribute(member.content_digest, usd, sender=mallory)
    assert core.splitter.balanceOf(mallory, usd) == mallorys
    assert core.splitter.balanceOf(alice, usd) == 2 * DOLLAR * (10_000 - 250 - 1_000 - 500) // 10_000


def test_payments_wait_while_a_token_is_off_the_allow_list(core, usd, deployer, payer, stranger, asset):
    receiver = core.licenses.paymentReceiverOf(asset)
    usd.mint(payer, DOLLAR, sender=deployer)
    pay(usd, payer, receiver, 10, stranger)
    core.licenses.sweepPayments(asset, usd, sender=stranger)
    core.licenses.setCurrencyAllowed(usd, False, sender=deployer)
    pay(usd, payer, receiver, 20, stranger)  # the token still moves; the receiver keeps it
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed):
        core.licenses.sweepPayments(asset, usd, sender=stranger)
    assert usd.balanceOf(receiver) == 20
    core.licenses.setCurrencyAllowed(usd, True, sender=deployer)
    core.licenses.sweepPayments(asset, usd, sender=stranger)
    assert core.splitter.pendingRevenueOf(asset, usd) == 30


def test_a_no_return_token_is_swept(project, core, deployer, stranger, asset):
    nrt = deployer.deploy(project.NoReturnToken)
    core.licenses.setCurrencyAllowed(nrt, True, sender=deployer)
    nrt.mint(core.licenses.paymentReceiverOf(asset), 77, sender=stranger)
    core.licenses.sweepPayments(asset, nrt, sender=stranger)
    assert core.splitter.pendingRevenueOf(asset, nrt) == 77 and nrt.balanceOf(core.splitter) == 77


def test_a_payment_in_another_token_to_a_receiver_is_not_lost(project, core, usd, deployer, payer, stranger, asset):
    other = deployer.deploy(project.TestToken, "Other", "OTH", 6)
    core.licenses.setCurrencyAllowed(other, True, sender=deployer)
    wrong = core.licenses.paymentReceiverOf(asset)  # the offer said `other`; the client paid in usd: same address
    usd.mint(payer, DOLLAR, sender=deployer)
    pay(usd, payer, wrong, DOLLAR, stranger)
    other.mint(wrong, 1, sender=stranger)
    core.licenses.sweepPayments(asset, other, sender=stranger)  # deploys it; sweeps only `other`
    core.licenses.sweepPayments(asset, usd, sender=stranger)  # the same receiver sweeps usd too
    assert core.splitter.pendingRevenueOf(asset, usd) == DOLLAR, "the usd paid to the asset is stuck"


def test_sweeps_cost_little_gas(core, usd, deployer, payer, stranger, asset):
    receiver = core.licenses.paymentReceiverOf(asset)
    usd.mint(payer, DOLLAR, sender=deployer)
    pay(usd, payer, receiver, 10, stranger)
    first = core.licenses.sweepPayments(asset, usd, sender=stranger)  # deploys the receiver
    pay(usd, payer, receiver, 10, stranger)
    later = core.licenses.sweepPayments(asset, usd, sender=stranger)
    assert first.gas_used < 400_000 and later.gas_used < 100_000, (first.gas_used, later.gas_used)
