"""Permit2 and x402's Permit2 proxies as proofmint places them on a development chain
(`agents.deploy.permit2`): the code at the canonical addresses is Permit2 with its domain for
that address, and every path of the upto and exact proxies, through the real Permit2, with
permits signed as stock x402 clients sign them (`agents.api.upto.UptoPermit.digest`, checked
here against the chain itself).

Attacker's view: a stranger or a front-runner holding a signed permit cannot settle an upto
permit (only its facilitator may), cannot redirect either kind (the payee is signed), cannot take
more than the maximum, before `validAfter` or after the deadline, or twice."""

from __future__ import annotations

import time
from typing import Any

import pytest
from eth_account import Account
from eth_utils.crypto import keccak

from agents.core.permits import EXACT_PROXY_ADDRESS, PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS, UptoPermit, domain_separator
from agents.core.toolchain import project_root, solc_executable
from agents.deploy.permit2 import build_permit2, install_permit2
from tests.contracts.helpers import reverts, reverts_raw

pytestmark = pytest.mark.contracts

MAX = 50_000
_EXACT_WITNESS = keccak(b"Witness(address to,uint256 validAfter)")
_EXACT_PERMIT = keccak(
    b"PermitWitnessTransferFrom(TokenPermissions permitted,address spender,uint256 nonce,uint256 deadline,"
    b"Witness witness)TokenPermissions(address token,uint256 amount)Witness(address to,uint256 validAfter)"
)


@pytest.fixture(scope="module")
def placed(project, chain, deployer):  # type: ignore[no-untyped-def]
    root = project_root()
    install_permit2(project, chain.provider, deployer, root, solc_executable(root))
    return chain.contracts.instance_at(PERMIT2_ADDRESS, abi=build_permit2(root, solc_executable(root)).abi)


@pytest.fixture(scope="module")
def usd(project, deployer, payer, placed):  # type: ignore[no-untyped-def]
    token = deployer.deploy(project.DevUsd, deployer.address)
    token.mint(payer.address, 10 * MAX, sender=deployer)
    token.approve(PERMIT2_ADDRESS, 2**256 - 1, sender=payer)
    return token


@pytest.fixture(scope="module")
def upto(project, placed):  # type: ignore[no-untyped-def]
    return project.x402UptoPermit2Proxy.at(UPTO_PROXY_ADDRESS)


@pytest.fixture(scope="module")
def exact(project, placed):  # type: ignore[no-untyped-def]
    return project.x402ExactPermit2Proxy.at(EXACT_PROXY_ADDRESS)


def _sign(account: Any, digest: bytes) -> bytes:
    signed = Account.from_key(account.private_key).unsafe_sign_hash(digest)
    return bytes(signed.signature)


def upto_permit(chain: Any, usd: Any, payer: Any, to: str, facilitator: str, **fields: Any) -> UptoPermit:
    values = {
        "payer": payer.address,
        "token": usd.address,
        "amount": MAX,
        "spender": UPTO_PROXY_ADDRESS,
        "nonce": int.from_bytes(keccak(str(time.time_ns()).encode()), "big"),
        "deadline": chain.pending_timestamp + 3_600,
        "to": to,
        "facilitator": facilitator,
        "valid_after": 0,
        "signature": b"",
        **fields,
    }
    unsigned = UptoPermit(**values)
    return UptoPermit(**{**values, "signature": _sign(payer, unsigned.digest(int(chain.chain_id)))})


def settle(proxy: Any, permit: UptoPermit, amount: int, sender: Any, **changes: Any) -> Any:
    witness = (changes.get("to", permit.to), changes.get("facilitator", permit.facilitator), permit.valid_after)
    return proxy.settle(
        ((permit.token, permit.amount), permit.nonce, permit.deadline),
        amount,
        changes.get("owner", permit.payer),
        witness,
        permit.signature,
        sender=sender,
    )


def test_permit2_sits_at_its_canonical_address_with_the_domain_of_that_address(placed, upto, exact, usd, chain):  # type: ignore[no-untyped-def]
    assert bytes(placed.DOMAIN_SEPARATOR()) == domain_separator(int(chain.chain_id))
    assert upto.PERMIT2() == PERMIT2_ADDRESS and exact.PERMIT2() == PERMIT2_ADDRESS
    assert bytes(upto.WITNESS_TYPEHASH()) == keccak(b"Witness(address to,address facilitator,uint256 validAfter)")
    assert bytes(exact.WITNESS_TYPEHASH()) == _EXACT_WITNESS


def test_the_facilitator_takes_what_it_charges_up_to_the_maximum_once(upto, usd, chain, payer, service, accounts):  # type: ignore[no-untyped-def]
    payee = accounts[9]
    permit = upto_permit(chain, usd, payer, payee.address, service.address)
    before = usd.balanceOf(payer)
    with reverts(upto.AmountExceedsPermitted):
        settle(upto, permit, MAX + 1, service)
    receipt = settle(upto, permit, 12_345, service)
    assert [log.event_name for log in receipt.events if log.contract_address == UPTO_PROXY_ADDRESS] == ["Settled"]
    assert usd.balanceOf(payer) == before - 12_345 and usd.balanceOf(payee) == 12_345
    with reverts_raw("InvalidNonce()"):  # what was not taken cannot be taken later
        settle(upto, permit, 1, service)
    assert usd.balanceOf(payer) == before - 12_345


def test_only_the_signed_facilitator_settles_and_nobody_redirects_or_rewrites(
    upto, usd, chain, payer, service, accounts
):  # type: ignore[no-untyped-def]
    stranger, payee = accounts[9], accounts[8]
    permit = upto_permit(chain, usd, payer, payee.address, service.address)
    with reverts(upto.UnauthorizedFacilitator):  # a front-runner with the public permit
        settle(upto, permit, MAX, stranger)
    with reverts_raw("InvalidSigner()"):  # ... naming itself the facilitator
        settle(upto, permit, MAX, stranger, facilitator=stranger.address)
    with reverts_raw("InvalidSigner()"):  # the facilitator redirecting the money
        settle(upto, permit, MAX, service, to=stranger.address)
    with reverts_raw("InvalidSigner()"):  # or taking it from someone else
        settle(upto, permit, MAX, service, owner=stranger.address)
    other = upto_permit(chain, usd, payer, payee.address, service.address, spender=EXACT_PROXY_ADDRESS)
    with reverts_raw("InvalidSigner()"):  # a permit signed for another spender
        settle(upto, other, MAX, service)
    settle(upto, permit, MAX, service)
    assert usd.balanceOf(payee) == MAX


def test_a_permit_outside_its_window_or_without_substance_settles_nothing(upto, usd, chain, payer, service, accounts):  # type: ignore[no-untyped-def]
    payee = accounts[9]
    permit = upto_permit(chain, usd, payer, payee.address, service.address)
    with reverts(upto.InvalidAmount):
        settle(upto, permit, 0, service)
    early = upto_permit(chain, usd, payer, payee.address, service.address, valid_after=chain.pending_timestamp + 600)
    with reverts(upto.PaymentTooEarly):
        settle(upto, early, 1, service)
    stale = upto_permit(chain, usd, payer, payee.address, service.address, deadline=chain.pending_timestamp - 1)
    with reverts_raw("SignatureExpired(uint256)", stale.deadline):
        settle(upto, stale, 1, service)
    nowhere = upto_permit(chain, usd, payer, "0x" + "00" * 20, service.address)
    with reverts(upto.InvalidDestination):
        settle(upto, nowhere, 1, service)
    with reverts(upto.InvalidOwner):
        settle(upto, permit, 1, service, owner="0x" + "00" * 20)
    poor = upto_permit(chain, usd, payer, payee.address, service.address, amount=10**30)
    with reverts_raw("TransferFromFailed()"):  # more than the payer holds
        settle(upto, poor, 10**30, service)
    assert usd.balanceOf(payee) == 0


def test_settle_with_permit_checks_the_2612_amount_and_goes_on_without_2612(upto, usd, chain, payer, service, accounts):  # type: ignore[no-untyped-def]
    payee = accounts[9]
    permit = upto_permit(chain, usd, payer, payee.address, service.address)
    args = (
        ((permit.token, permit.amount), permit.nonce, permit.deadline),
        700,
        permit.payer,
        (permit.to, permit.facilitator, permit.valid_after),
        permit.signature,
    )
    with reverts(upto.Permit2612AmountMismatch):
        upto.settleWithPermit((MAX - 1, permit.deadline, b"\x01" * 32, b"\x02" * 32, 27), *args, sender=service)
    with reverts(upto.AmountExceedsPermitted):
        upto.settleWithPermit((MAX, permit.deadline, b"\x01" * 32, b"\x02" * 32, 27), args[0], MAX + 1, *args[2:],
                              sender=service)  # fmt: skip
    with reverts(upto.UnauthorizedFacilitator):
        upto.settleWithPermit((MAX, permit.deadline, b"\x01" * 32, b"\x02" * 32, 27), *args, sender=accounts[8])
    # DevUsd has no EIP-2612 permit: the failed call is reported, and the existing allowance pays
    receipt = upto.settleWithPermit((MAX, permit.deadline, b"\x01" * 32, b"\x02" * 32, 27), *args, sender=service)
    names = [log.event_name for log in receipt.events if log.contract_address == UPTO_PROXY_ADDRESS]
    assert names == ["EIP2612PermitFailedWithData", "SettledWithPermit"]
    assert usd.balanceOf(payee) == 700


def exact_signature(chain: Any, usd: Any, payer: Any, to: str, nonce: int, deadline: int, valid_after: int) -> bytes:
    def word(address: str) -> bytes:
        return bytes(12) + bytes.fromhex(address[2:])

    permitted = keccak(keccak(b"TokenPermissions(address token,uint256 amount)") + word(usd.address)
                       + MAX.to_bytes(32, "big"))  # fmt: skip
    witness = keccak(_EXACT_WITNESS + word(to) + valid_after.to_bytes(32, "big"))
    struct = keccak(_EXACT_PERMIT + permitted + word(EXACT_PROXY_ADDRESS) + nonce.to_bytes(32, "big")
                    + deadline.to_bytes(32, "big") + witness)  # fmt: skip
    return _sign(payer, keccak(b"\x19\x01" + domain_separator(int(chain.chain_id)) + struct))


def test_the_exact_proxy_pays_the_signed_payee_the_whole_amount_whoever_submits_it(exact, usd, chain, payer, accounts):  # type: ignore[no-untyped-def]
    front_runner, payee = accounts[9], accounts[8]
    deadline = chain.pending_timestamp + 600
    signature = exact_signature(chain, usd, payer, payee.address, 77, deadline, 0)
    permit = ((usd.address, MAX), 77, deadline)
    with reverts_raw("InvalidSigner()"):
        exact.settle(permit, payer.address, (front_runner.address, 0), signature, sender=front_runner)
    receipt = exact.settle(permit, payer.address, (payee.address, 0), signature, sender=front_runner)
    assert [log.event_name for log in receipt.events if log.contract_address == EXACT_PROXY_ADDRESS] == ["Settled"]
    assert usd.balanceOf(payee) == MAX  # the money went where the payer said
    with reverts_raw("InvalidNonce()"):
        exact.settle(permit, payer.address, (payee.address, 0), signature, sender=payee)
    later = chain.pending_timestamp + 600
    early = exact_signature(chain, usd, payer, payee.address, 78, deadline, later)
    with reverts(exact.PaymentTooEarly):
        exact.settle(((usd.address, MAX), 78, deadline), payer.address, (payee.address, later), early, sender=payee)
    with reverts(exact.Permit2612AmountMismatch):
        exact.settleWithPermit((1, deadline, b"\x01" * 32, b"\x02" * 32, 27), ((usd.address, MAX), 79, deadline),
                               payer.address, (payee.address, 0), signature, sender=payee)  # fmt: skip
