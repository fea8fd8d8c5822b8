"""Push payments (x402 `exact`): an EIP-3009 dollar for development chains (DevUsd), and each
asset's payment receiver (PaymentReceiver, deployed by LicenseManager with CREATE2), whose
address binds a payment to the asset so that it does not matter who submits it.

DevUsd authorizations (each leaf a test below):
  now <= validAfter                        -> DevUsd__NotYetValid
  now >= validBefore                       -> DevUsd__Expired
  nonce used or cancelled                  -> DevUsd__AuthorizationUsed
  not the payer's signature (other signer, other payee, value, high s, another chain's domain)
                                           -> DevUsd__BadSignature
  receiveWithAuthorization not by payee    -> DevUsd__CallerNotPayee
  mint by another than the owner           -> OwnableUnauthorizedAccount
  otherwise -> moved once, AuthorizationUsed

LicenseManager.sweepPayments:
  unknown asset                            -> LicenseManager__UnknownAsset
  token not allow-listed (or zero)         -> LicenseManager__CurrencyNotAllowed
  nothing arrived since the last sweep     -> LicenseManager__NothingToSweep
  otherwise -> receiver deployed on first use, what the splitter received, at most what the
               receiver sent, credited to the asset
  (ReceiverMismatch cannot happen on an EVM, which computes CREATE2 as paymentReceiverOf does: it
  guards chains that compute it otherwise, where payments to the address would be stranded)
PaymentReceiver.sweep by another than its manager -> PaymentReceiver__NotManager
"""

from __future__ import annotations

from typing import Any

import ape
import pytest
from eth_utils import keccak, to_checksum_address

from tests.contracts.helpers import (
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


def authorization(token: Any, payer: Any, to: str, value: int, *, key: str | None = None, **options: Any):  # type: ignore[no-untyped-def]
    """An EIP-3009 authorization as the x402 `exact` client signs it: (its fields, the 65-byte signature)."""
    return eip3009_authorization(token, key or payer.private_key, payer.address, to, value, **options)


args = authorization_args


# --- DevUsd ---------------------------------------------------------------------------------


def test_a_transfer_with_authorization_moves_once_whoever_submits_it(usd, deployer, payer, stranger, creator):
    usd.mint(payer, 5 * DOLLAR, sender=deployer)
    message, signature = authorization(usd, payer, creator.address, 2 * DOLLAR)
    receipt = usd.transferWithAuthorization(*args(message), *vrs(signature), sender=stranger)  # anyone submits
    assert usd.balanceOf(creator) == 2 * DOLLAR and usd.balanceOf(payer) == 3 * DOLLAR
    assert usd.authorizationState(payer, message["nonce"])
    assert receipt.events.filter(usd.AuthorizationUsed)[0].nonce == message["nonce"]
    with ape.reverts(usd.DevUsd__AuthorizationUsed, authorizer=payer.address):
        usd.transferWithAuthorization(*args(message), *vrs(signature), sender=stranger)
    with ape.reverts(usd.DevUsd__AuthorizationUsed):  # the bytes overload shares the nonce
        usd.transferWithAuthorization(*args(message), signature, sender=stranger)
    assert usd.decimals() == 6


def test_authorizations_outside_their_window_are_refused(usd, deployer, payer, stranger, chain):
    usd.mint(payer, DOLLAR, sender=deployer)
    now = chain.pending_timestamp
    early, signature = authorization(usd, payer, stranger.address, 1, valid_after=now + 100)
    with ape.reverts(usd.DevUsd__NotYetValid, validAfter=now + 100):
        usd.transferWithAuthorization(*args(early), *vrs(signature), sender=stranger)
    late, signature = authorization(usd, payer, stranger.address, 1, valid_before=now - 1)
    with ape.reverts(usd.DevUsd__Expired, validBefore=now - 1):
        usd.transferWithAuthorization(*args(late), *vrs(signature), sender=stranger)


def test_an_authorization_changed_or_signed_by_another_is_refused(usd, deployer, payer, stranger, accounts):
    usd.mint(payer, DOLLAR, sender=deployer)
    message, signature = authorization(usd, payer, stranger.address, 10)
    for field, value in (("to", accounts[4].address), ("value", 11), ("validBefore", 2**40 + 1)):
        changed = {**message, field: value}
        with ape.reverts(usd.DevUsd__BadSignature, authorizer=payer.address):
            usd.transferWithAuthorization(*args(changed), *vrs(signature), sender=stranger)
    forged, by_stranger = authorization(usd, payer, stranger.address, 10, key=stranger.private_key)
    with ape.reverts(usd.DevUsd__BadSignature):
        usd.transferWithAuthorization(*args(forged), *vrs(by_stranger), sender=stranger)
    other_chain, signature2 = authorization(usd, payer, stranger.address, 10, chain_id=1)
    with ape.reverts(usd.DevUsd__BadSignature):
        usd.transferWithAuthorization(*args(other_chain), *vrs(signature2), sender=stranger)
    # the same signature with s flipped to the high half (and v flipped) is the payer's too, mathematically
    r, s, v = signature[:32], int.from_bytes(signature[32:64], "big"), signature[64]
    high = r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    with ape.reverts(usd.DevUsd__BadSignature):
        usd.transferWithAuthorization(*args(message), high, sender=stranger)
    assert usd.balanceOf(stranger) == 0
    usd.transferWithAuthorization(*args(message), signature, sender=stranger)  # the original still works
    assert usd.balanceOf(stranger) == 10


def test_receive_with_authorization_only_by_its_payee(usd, deployer, payer, stranger, creator):
    usd.mint(payer, DOLLAR, sender=deployer)
    message, signature = authorization(usd, payer, creator.address, 7, primary="ReceiveWithAuthorization")
    with ape.reverts(usd.DevUsd__CallerNotPayee, caller=stranger.address, payee=creator.address):
        usd.receiveWithAuthorization(*args(message), *vrs(signature), sender=stranger)
    with ape.reverts(usd.DevUsd__BadSignature):  # a receive authorization is no transfer authorization
        usd.transferWithAuthorization(*args(message), *vrs(signature), sender=stranger)
    usd.receiveWithAuthorization(*args(message), *vrs(signature), sender=creator)
    assert usd.balanceOf(creator) == 7


def test_a_cancelled_authorization_can_never_be_used(usd, deployer, payer, stranger):
    usd.mint(payer, DOLLAR, sender=deployer)
    message, signature = authorization(usd, payer, stranger.address, 10)
    cancel_message = {"authorizer": payer.address, "nonce": message["nonce"]}
    by_stranger = sign_eip3009(usd, stranger.private_key, "CancelAuthorization", cancel_message)
    with ape.reverts(usd.DevUsd__BadSignature):
        usd.cancelAuthorization(payer, message["nonce"], *vrs(by_stranger), sender=stranger)
    cancel = sign_eip3009(usd, payer.private_key, "CancelAuthorization", cancel_message)
    receipt = usd.cancelAuthorization(payer, message["nonce"], *vrs(cancel), sender=stranger)
    assert receipt.events.filter(usd.AuthorizationCanceled)[0].authorizer == payer.address
    with ape.reverts(usd.DevUsd__AuthorizationUsed):
        usd.transferWithAuthorization(*args(message), *vrs(signature), sender=stranger)
    with ape.reverts(usd.DevUsd__AuthorizationUsed):
        usd.cancelAuthorization(payer, message["nonce"], *vrs(cancel), sender=stranger)


def test_only_the_owner_mints(usd, stranger):
    with ape.reverts(usd.OwnableUnauthorizedAccount, account=stranger.address):
        usd.mint(stranger, 1, sender=stranger)


# --- receivers and sweeps ---------------------------------------------------------------------


def expected_receiver(project: Any, manager: str, asset: bytes) -> str:
    """CREATE2(manager, salt = asset, PaymentReceiver's creation code)."""
    creation = bytes.fromhex(project.PaymentReceiver.contract_type.deployment_bytecode.bytecode[2:])
    return to_checksum_address(keccak(b"\xff" + bytes.fromhex(manager[2:]) + asset + keccak(creation))[12:])


def test_a_receiver_address_is_per_asset_for_any_token_and_known_before_it_exists(project, core, usd, asset):
    receiver = core.licenses.paymentReceiverOf(asset)
    assert receiver == expected_receiver(project, core.licenses.address, asset)
    assert receiver != core.licenses.paymentReceiverOf(digest("another"))
    assert len(ape.chain.provider.get_code(receiver)) == 0


def test_a_payment_anyone_submits_lands_in_the_assets_revenue_once(
    project, core, usd, deployer, payer, stranger, asset
):
    """The front-runner's case: a stranger who saw the payer's authorization (it travels in an
    HTTP header) submits it first. The money still goes where the payer sent it, the asset's
    receiver, and from there, swept by anyone, into that asset's revenue, once."""
    usd.mint(payer, 10 * DOLLAR, sender=deployer)
    receiver = core.licenses.paymentReceiverOf(asset)
    for value in (DOLLAR, 2 * DOLLAR):  # two paid uses before anyone sweeps
        message, signature = authorization(usd, payer, receiver, value)
        usd.transferWithAuthorization(*args(message), signature, sender=stranger)
    assert usd.balanceOf(receiver) == 3 * DOLLAR
    receipt = core.licenses.sweepPayments(asset, usd, sender=stranger)
    event = receipt.events.filter(core.licenses.PaymentsSwept)[0]
    assert (event.asset, event.token, event.receiver, event.amount) == (asset, usd.address, receiver, 3 * DOLLAR)
    assert core.splitter.pendingRevenueOf(asset, usd) == 3 * DOLLAR
    assert usd.balanceOf(core.splitter) == 3 * DOLLAR and usd.balanceOf(receiver) == 0
    assert len(ape.chain.provider.get_code(receiver)) > 0
    with ape.reverts(core.licenses.LicenseManager__NothingToSweep, asset=asset, token=usd.address):
        core.licenses.sweepPayments(asset, usd, sender=stranger)
    message, signature = authorization(usd, payer, receiver, DOLLAR)  # later payments: the receiver exists now
    usd.transferWithAuthorization(*args(message), signature, sender=payer)
    core.licenses.sweepPayments(asset, usd, sender=payer)
    assert core.splitter.pendingRevenueOf(asset, usd) == 4 * DOLLAR


def test_a_squatter_cannot_take_a_receivers_payments_for_another_asset(
    project, core, usd, deployer, payer, stranger, asset, model_id
):
    squatted = asset_record("squatter's", stranger, model_id)
    register_asset(core.provenance, stranger, squatted)
    usd.mint(payer, DOLLAR, sender=deployer)
    receiver = core.licenses.paymentReceiverOf(asset)
    message, signature = authorization(usd, payer, receiver, DOLLAR)
    usd.transferWithAuthorization(*args(message), signature, sender=stranger)
    with ape.reverts(core.licenses.LicenseManager__NothingToSweep):  # its own receiver is empty
        core.licenses.sweepPayments(squatted.content_digest, usd, sender=stranger)
    core.licenses.sweepPayments(asset, usd, sender=stranger)  # deploys the asset's receiver
    with ape.reverts(project.PaymentReceiver.at(receiver).PaymentReceiver__NotManager, caller=stranger.address):
        project.PaymentReceiver.at(receiver).sweep(usd, stranger, sender=stranger)
    assert core.splitter.pendingRevenueOf(asset, usd) == DOLLAR
    assert core.splitter.pendingRevenueOf(squatted.content_digest, usd) == 0


def test_sweep_reverts_for_unknown_assets_and_tokens_off_the_allow_list(project, core, usd, deployer, stranger, asset):
    with ape.reverts(core.licenses.LicenseManager__UnknownAsset, asset=digest("nobody")):
        core.licenses.sweepPayments(digest("nobody"), usd, sender=stranger)
    other = deployer.deploy(project.DevUsd, deployer)
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed, currency=other.address):
        core.licenses.sweepPayments(asset, other, sender=stranger)
    with ape.reverts(core.licenses.LicenseManager__CurrencyNotAllowed):
        core.licenses.sweepPayments(asset, "0x" + "00" * 20, sender=stranger)
    # paid while off the list: the payment waits in the receiver until the owner allows the token
    other.mint(core.licenses.paymentReceiverOf(asset), 5, sender=deployer)
    core.licenses.setCurrencyAllowed(other, True, sender=deployer)
    core.licenses.sweepPayments(asset, other, sender=stranger)
    assert core.splitter.pendingRevenueOf(asset, other) == 5


def test_a_fee_on_transfer_token_credits_what_the_splitter_received(project, core, deployer, stranger, asset):
    fot = deployer.deploy(project.FeeOnTransferToken)
    core.licenses.setCurrencyAllowed(fot, True, sender=deployer)
    fot.mint(core.licenses.paymentReceiverOf(asset), 10_000, sender=stranger)
    receipt = core.licenses.sweepPayments(asset, fot, sender=stranger)
    assert receipt.events.filter(core.licenses.PaymentsSwept)[0].amount == 9_900
    assert core.splitter.pendingRevenueOf(asset, fot) == 9_900


def test_swept_revenue_is_split_like_any_other(core, usd, deployer, payer, stranger, asset, creator, developer):
    usd.mint(payer, DOLLAR, sender=deployer)
    message, signature = authorization(usd, payer, core.licenses.paymentReceiverOf(asset), DOLLAR)
    usd.transferWithAuthorization(*args(message), signature, sender=stranger)
    core.licenses.sweepPayments(asset, usd, sender=stranger)
    core.splitter.distribute(asset, usd, sender=stranger)
    assert core.splitter.pendingRevenueOf(asset, usd) == 0
    # as for any revenue: the treasury's fee 2.5%, the model version's developer 10%, its data
    # originators 5%, the creator the rest
    assert core.splitter.balanceOf(developer, usd) == DOLLAR * 1_000 // 10_000
    assert core.splitter.balanceOf(creator, usd) == DOLLAR * (10_000 - 250 - 1_000 - 500) // 10_000
