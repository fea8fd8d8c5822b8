"""RoyaltySplitter: splits, parents' pools, data originators, pull withdrawals, hostile parties.

Branch tree:
  fundReserve / fundRevenue / creditFromReserve / releaseReserve from anyone but the licence
    manager                                            -> OnlyLicenseManager
  pay: zero, unknown asset, wrong ETH, ERC-20 with ETH, not allowed, fee-on-transfer -> errors
  distribute: nothing pending                          -> NothingToDistribute
              otherwise exact cumulative floor shares; parents' shares into their pending
              (inherited: the parent's distribution charges no protocol fee on it, the
              parent's creator takes the fee's part)
  claimDataShare: weight 0 / > scale, bad proof, nothing new -> errors; capped by the pool;
              counted per (originator, weight) leaf
  withdraw: zero recipient, nothing                    -> errors; reverting / gas-burning /
            re-entering receivers only hurt themselves
"""

from __future__ import annotations

import ape
import pytest

from tests.contracts.helpers import (
    ETH,
    ZERO_ADDRESS,
    asset_record,
    attach_terms,
    buy_license,
    data_tree_for,
    digest,
    register_asset,
)

pytestmark = pytest.mark.chain


@pytest.fixture
def asset(core, model_id, creator) -> bytes:  # type: ignore[no-untyped-def]
    record = asset_record("asset", creator, model_id)
    register_asset(core.provenance, creator, record)
    return record.content_digest


def shares(total: int, bps: int) -> int:
    return total * bps // 10_000


def test_only_licence_manager_moves_escrow(core, stranger, asset):
    s = core.splitter
    with ape.reverts(s.RoyaltySplitter__OnlyLicenseManager, caller=stranger.address):
        s.fundReserve(ETH, 1, sender=stranger, value=1)
    with ape.reverts(s.RoyaltySplitter__OnlyLicenseManager):
        s.fundRevenue(ETH, asset, 1, sender=stranger, value=1)
    with ape.reverts(s.RoyaltySplitter__OnlyLicenseManager):
        s.creditFromReserve(ETH, [asset], [1], 1, sender=stranger)
    with ape.reverts(s.RoyaltySplitter__OnlyLicenseManager):
        s.releaseReserve(ETH, stranger, 1, sender=stranger)


def test_pay_reverts(project, core, deployer, stranger, asset):
    s = core.splitter
    with ape.reverts(s.RoyaltySplitter__ZeroAmount):
        s.pay(asset, ETH, 0, sender=stranger)
    with ape.reverts(s.RoyaltySplitter__UnknownAsset, asset=digest("x")):
        s.pay(digest("x"), ETH, 1, sender=stranger, value=1)
    with ape.reverts(s.RoyaltySplitter__WrongPayment, sent=1, due=2):
        s.pay(asset, ETH, 2, sender=stranger, value=1)
    token = deployer.deploy(project.TestToken, "T", "T", 18)
    with ape.reverts(s.RoyaltySplitter__CurrencyNotAllowed, currency=token.address):
        s.pay(asset, token, 1, sender=stranger)
    core.licenses.setCurrencyAllowed(token, True, sender=deployer)
    with ape.reverts(s.RoyaltySplitter__WrongPayment, sent=1, due=0):
        s.pay(asset, token, 1, sender=stranger, value=1)
    fot = deployer.deploy(project.FeeOnTransferToken)
    core.licenses.setCurrencyAllowed(fot, True, sender=deployer)
    fot.mint(stranger, 1_000, sender=stranger)
    fot.approve(s, 1_000, sender=stranger)
    with ape.reverts(s.RoyaltySplitter__TransferMismatch, expected=1_000, received=990):
        s.pay(asset, fot, 1_000, sender=stranger)


@pytest.mark.smoke  # also on anvil
def test_distribute_splits_exactly(core, asset, model_id, creator, developer, treasury, stranger):
    amount = 1_000_003
    core.splitter.pay(asset, ETH, amount, sender=stranger, value=amount)
    with ape.reverts(core.splitter.RoyaltySplitter__NothingToDistribute):
        core.splitter.distribute(asset, ZERO_ADDRESS.replace("0x00", "0x01"), sender=stranger)
    receipt = core.splitter.distribute(asset, ETH, sender=stranger)
    event = receipt.events.filter(core.splitter.Distributed)[0]
    fee, dev, data = shares(amount, 250), shares(amount, 1_000), shares(amount, 500)
    creator_share = shares(amount, 10_000 - 250 - 1_000 - 500)
    assert (event.feeShare, event.developerShare, event.dataShare, event.creatorShare) == (
        fee,
        dev,
        data,
        creator_share,
    )
    assert core.splitter.balanceOf(treasury, ETH) == fee
    assert core.splitter.balanceOf(developer, ETH) == dev
    assert core.splitter.balanceOf(creator, ETH) == creator_share
    assert core.splitter.dataPoolOf(model_id, ETH) == (data, 0)
    assert core.splitter.dustOf(ETH) == amount - fee - dev - data - creator_share
    with ape.reverts(core.splitter.RoyaltySplitter__NothingToDistribute, asset=asset, currency=ETH):
        core.splitter.distribute(asset, ETH, sender=stranger)


def test_rounding_never_moves_shares_over_many_small_payments(
    project, core, deployer, asset, creator, developer, treasury, stranger
):
    # A 2-decimal token paid 1 unit at a time: cumulative splitting gives every role exactly
    # floor(total * bps / 10_000) at the end, as if paid at once.
    token = deployer.deploy(project.TestToken, "Cents", "CNT", 2)
    core.licenses.setCurrencyAllowed(token, True, sender=deployer)
    token.mint(stranger, 1_000, sender=stranger)
    token.approve(core.splitter, 1_000, sender=stranger)
    total = 0
    for amount in [1] * 30 + [7, 13, 1, 99]:
        core.splitter.pay(asset, token, amount, sender=stranger)
        core.splitter.distribute(asset, token, sender=stranger)
        total += amount
    assert core.splitter.balanceOf(treasury, token) == shares(total, 250)
    assert core.splitter.balanceOf(developer, token) == shares(total, 1_000)
    assert core.splitter.balanceOf(creator, token) == shares(total, 8_250)
    pool, _ = core.splitter.dataPoolOf(1, token)
    assert pool == shares(total, 500)
    assert (
        core.splitter.dustOf(token) == total - shares(total, 250) - shares(total, 1_000) - shares(total, 8_250) - pool
    )
    assert core.splitter.dustOf(token) < 4


def test_parent_share_lands_in_parent_pool(core, model_id, creator, other_creator, stranger):
    parent = asset_record("parent", creator, model_id)
    register_asset(core.provenance, creator, parent)
    t = attach_terms(core.licenses, creator, parent.content_digest, derivative_bps=2_000, price=0)
    child = asset_record("child", other_creator, model_id, parents=(parent.content_digest,))
    register_asset(core.provenance, other_creator, child, [buy_license(core.licenses, other_creator, t)])
    core.splitter.pay(child.content_digest, ETH, 10_000, sender=stranger, value=10_000)
    receipt = core.splitter.distribute(child.content_digest, ETH, sender=stranger)
    assert receipt.events.filter(core.splitter.ParentCredited)[0].amount == 2_000
    assert core.splitter.balanceOf(other_creator, ETH) == 10_000 - 250 - 1_000 - 500 - 2_000
    assert core.splitter.pendingRevenueOf(parent.content_digest, ETH) == 2_000
    assert core.splitter.pendingInheritedOf(parent.content_digest, ETH) == 2_000
    core.splitter.distribute(parent.content_digest, ETH, sender=stranger)
    # The payment paid the protocol fee once, at the child: on the parent's inherited 2,000 the
    # fee's 2.5% goes to the parent's creator instead.
    assert core.splitter.balanceOf(creator, ETH) == shares(2_000, 8_250) + shares(2_000, 250)
    assert core.splitter.balanceOf(core.splitter.TREASURY(), ETH) == 250


def test_the_protocol_fee_is_charged_once_per_payment_down_a_lineage(
    core, model_id, creator, other_creator, treasury, stranger
):
    # Grandparent <- parent <- child, 20% derivative share at each level. 10,000 paid to the
    # child and 4,000 paid straight to the parent: the fee is 2.5% of 14,000, never of the money
    # passed up the lineage, and every wei is accounted (credited + dust == paid).
    grand = asset_record("grand", creator, model_id)
    register_asset(core.provenance, creator, grand)
    t1 = attach_terms(core.licenses, creator, grand.content_digest, derivative_bps=2_000, price=0)
    parent = asset_record("parent-2", other_creator, model_id, parents=(grand.content_digest,))
    register_asset(core.provenance, other_creator, parent, [buy_license(core.licenses, other_creator, t1)])
    t2 = attach_terms(core.licenses, other_creator, parent.content_digest, derivative_bps=2_000, price=0)
    child = asset_record("child-2", creator, model_id, parents=(parent.content_digest,))
    register_asset(core.provenance, creator, child, [buy_license(core.licenses, creator, t2)])
    core.splitter.pay(child.content_digest, ETH, 10_000, sender=stranger, value=10_000)
    core.splitter.pay(parent.content_digest, ETH, 4_000, sender=stranger, value=4_000)
    for asset in (child, parent, grand):
        core.splitter.distribute(asset.content_digest, ETH, sender=stranger)
    assert core.splitter.balanceOf(treasury, ETH) == shares(14_000, 250)
    # The parent split 4,000 of its own (fee charged) and 2,000 inherited (no fee).
    assert core.splitter.balanceOf(other_creator, ETH) == shares(6_000, 6_250) + shares(2_000, 250)
    assert core.splitter.distributedOf(parent.content_digest, ETH) == 6_000
    assert core.splitter.distributedOf(grand.content_digest, ETH) == shares(6_000, 2_000)
    credited = sum(
        int(core.splitter.balanceOf(a, ETH)) for a in {treasury.address, creator.address, other_creator.address}
    ) + int(core.splitter.balanceOf(core.models.getModel(model_id).developer, ETH))
    pool, _ = core.splitter.dataPoolOf(model_id, ETH)
    assert credited + pool + core.splitter.dustOf(ETH) == 14_000


def test_data_originators_claim_with_proofs(core, asset, model_id, stranger):
    tree = data_tree_for("tiny-sd")
    core.splitter.pay(asset, ETH, 10**6, sender=stranger, value=10**6)
    core.splitter.distribute(asset, ETH, sender=stranger)
    pool, _ = core.splitter.dataPoolOf(model_id, ETH)
    for originator, weight in tree.shares:
        proof = tree.proof(originator)
        receipt = core.splitter.claimDataShare(model_id, ETH, originator, weight, proof, sender=stranger)
        assert receipt.events.filter(core.splitter.DataShareClaimed)[0].amount == pool * weight // 10**6
        assert core.splitter.balanceOf(originator, ETH) == pool * weight // 10**6
        with ape.reverts(core.splitter.RoyaltySplitter__NothingToClaim):
            core.splitter.claimDataShare(model_id, ETH, originator, weight, proof, sender=stranger)
    originator, weight = tree.shares[0]
    with ape.reverts(core.splitter.RoyaltySplitter__InvalidDataProof, modelId=model_id, originator=originator):
        core.splitter.claimDataShare(model_id, ETH, originator, weight + 1, tree.proof(originator), sender=stranger)
    with ape.reverts(core.splitter.RoyaltySplitter__InvalidDataProof):
        core.splitter.claimDataShare(model_id, ETH, stranger.address, weight, tree.proof(originator), sender=stranger)
    for bad in (0, 10**6 + 1):
        with ape.reverts(core.splitter.RoyaltySplitter__BadWeight, weight=bad):
            core.splitter.claimDataShare(model_id, ETH, originator, bad, [], sender=stranger)


def test_an_originator_listed_with_two_weights_is_paid_both(core, creator, developer, stranger):
    # A data tree may list one originator twice (two datasets it contributed). Claims are
    # counted per leaf, so it receives both weights' shares, not only the larger one.
    # (The agents' DataTree refuses duplicates, so the tree is built here the way OpenZeppelin's
    # StandardMerkleTree builds it: sorted leaves, sorted-pair nodes.)
    from agents.core.merkle import _hash_pair, data_leaf
    from tests.contracts.helpers import register_model

    leaves = sorted(
        data_leaf(a, w)
        for a, w in [(stranger.address, 300_000), (stranger.address, 200_000), (developer.address, 500_000)]
    )
    pair = _hash_pair(leaves[0], leaves[1])
    root = _hash_pair(pair, leaves[2])
    proofs = {leaves[0]: [leaves[1], leaves[2]], leaves[1]: [leaves[0], leaves[2]], leaves[2]: [pair]}
    model = register_model(core.models, developer, label="twice", data_bps=1_000, data_root=root)
    rec = asset_record("twice", creator, model)
    register_asset(core.provenance, creator, rec)
    core.splitter.pay(rec.content_digest, ETH, 100_000, sender=stranger, value=100_000)
    core.splitter.distribute(rec.content_digest, ETH, sender=stranger)
    for weight in (300_000, 200_000):
        proof = proofs[data_leaf(stranger.address, weight)]
        core.splitter.claimDataShare(model, ETH, stranger, weight, proof, sender=stranger)
        assert core.splitter.dataClaimedOf(model, ETH, stranger, weight) == 10_000 * weight // 10**6
    assert core.splitter.balanceOf(stranger, ETH) == 5_000


def test_overweight_data_root_cannot_reach_other_money(core, creator, developer, stranger):
    # A developer commits a root whose single leaf claims 100% though two originators are listed
    # elsewhere: claims are capped by the pool, so nothing outside the pool is reachable.
    from agents.core.merkle import data_leaf
    from tests.contracts.helpers import register_model

    root = data_leaf(stranger.address, 10**6)
    model = register_model(core.models, developer, label="greedy", data_bps=1_000, data_root=root)
    rec = asset_record("g", creator, model)
    register_asset(core.provenance, creator, rec)
    core.splitter.pay(rec.content_digest, ETH, 10_000, sender=stranger, value=10_000)
    core.splitter.distribute(rec.content_digest, ETH, sender=stranger)
    core.splitter.claimDataShare(model, ETH, stranger, 10**6, [], sender=stranger)
    assert core.splitter.balanceOf(stranger, ETH) == 1_000
    assert core.splitter.dataPoolOf(model, ETH) == (1_000, 1_000)


@pytest.mark.smoke  # also on anvil
def test_withdraw_pays_caller_once(core, asset, creator, stranger):
    core.splitter.pay(asset, ETH, 10**15, sender=stranger, value=10**15)
    core.splitter.distribute(asset, ETH, sender=stranger)
    owed = core.splitter.balanceOf(creator, ETH)
    with ape.reverts(core.splitter.RoyaltySplitter__ZeroRecipient):
        core.splitter.withdraw(ETH, ZERO_ADDRESS, sender=creator)
    before = stranger.balance
    receipt = core.splitter.withdraw(ETH, stranger, sender=creator)
    assert receipt.events.filter(core.splitter.Withdrawn)[0].amount == owed
    assert stranger.balance == before + owed
    with ape.reverts(core.splitter.RoyaltySplitter__NothingToWithdraw, account=creator.address, currency=ETH):
        core.splitter.withdraw(ETH, creator, sender=creator)


@pytest.fixture
def hostile_creator(project, core, deployer, model_id, stranger):  # type: ignore[no-untyped-def]
    """A contract account that registers an asset and earns its creator share."""
    actor = deployer.deploy(project.HostileActor)
    record = asset_record("hostile", actor.address, model_id)
    actor.exec(core.provenance, core.provenance.register.encode_input(record.as_tuple(), []), sender=deployer)
    core.splitter.pay(record.content_digest, ETH, 10**6, sender=stranger, value=10**6)
    core.splitter.distribute(record.content_digest, ETH, sender=stranger)
    return actor


def test_reverting_or_gas_burning_receiver_blocks_only_itself(
    core, hostile_creator, asset, deployer, creator, stranger
):
    owed = core.splitter.balanceOf(hostile_creator, ETH)
    assert owed > 0
    for mode in (1, 2):  # revert, burn all gas
        hostile_creator.setMode(mode, sender=deployer)
        with ape.reverts():
            hostile_creator.exec(
                core.splitter,
                core.splitter.withdraw.encode_input(ETH, hostile_creator.address),
                sender=deployer,
                # enough for a withdrawal many times over; the burner takes all it is given (little
                # here: a node's trace of the failed transaction, which ape reads, grows with it)
                gas=300_000,
            )
        assert core.splitter.balanceOf(hostile_creator, ETH) == owed
    # Others are unaffected, and the hostile account can still withdraw elsewhere.
    core.splitter.pay(asset, ETH, 100, sender=stranger, value=100)
    core.splitter.distribute(asset, ETH, sender=stranger)
    core.splitter.withdraw(ETH, creator, sender=creator)
    hostile_creator.exec(core.splitter, core.splitter.withdraw.encode_input(ETH, stranger.address), sender=deployer)
    assert core.splitter.balanceOf(hostile_creator, ETH) == 0


def test_reentering_receiver_cannot_double_collect(core, hostile_creator, deployer):
    owed = core.splitter.balanceOf(hostile_creator, ETH)
    call = core.splitter.withdraw.encode_input(ETH, hostile_creator.address)
    hostile_creator.setMode(3, sender=deployer)
    hostile_creator.setReentry(core.splitter, call, sender=deployer)
    before = hostile_creator.balance
    hostile_creator.exec(core.splitter, call, sender=deployer)
    assert hostile_creator.reentries() == 1 and not hostile_creator.lastReentrySucceeded()
    assert hostile_creator.balance == before + owed
    deposited, withdrawn = core.splitter.totalsOf(ETH)
    assert core.splitter.balance == deposited - withdrawn


def test_erc20_withdraw_with_no_return_token(project, core, deployer, asset, creator, stranger):
    nrt = deployer.deploy(project.NoReturnToken)
    core.licenses.setCurrencyAllowed(nrt, True, sender=deployer)
    nrt.mint(stranger, 10_000, sender=stranger)
    nrt.approve(core.splitter, 10_000, sender=stranger)
    core.splitter.pay(asset, nrt, 10_000, sender=stranger)
    core.splitter.distribute(asset, nrt, sender=stranger)
    core.splitter.withdraw(nrt, creator, sender=creator)
    assert nrt.balanceOf(creator) == shares(10_000, 8_250)


def test_constructor_checks_wiring(project, core, deployer, treasury):
    # A splitter that the licence manager does not name cannot be deployed.
    with ape.reverts(project.RoyaltySplitter.RoyaltySplitter__BadConfig):
        deployer.deploy(project.RoyaltySplitter, core.provenance, core.models, core.licenses, treasury)


def test_constructor_refuses_a_model_registry_other_than_the_provenance_registrys(project, deployer, treasury):
    # Wired like deploy_core (each contract names the next one's address), except that the
    # splitter is handed another model registry than the one the provenance registry reads.
    from agents.deploy.deployment import create_address

    nonce = int(deployer.nonce)
    models = deployer.deploy(project.ModelRegistry)
    other_models = deployer.deploy(project.ModelRegistry)
    licenses_at = create_address(deployer.address, nonce + 3)
    provenance = deployer.deploy(project.ProvenanceRegistry, models, licenses_at, 250, 500)
    splitter_at = create_address(deployer.address, nonce + 4)
    licenses = deployer.deploy(project.LicenseManager, provenance, splitter_at, 86_400, deployer)
    assert licenses.address == licenses_at
    # Both constructions simulated from the next nonce, the address the licence manager names:
    # with the provenance registry's model registry it deploys, with another it does not.
    from eth_abi import encode

    from agents.core.reverts import WouldRevertError, error_table, preflight

    table = error_table([[abi.model_dump(by_alias=True) for abi in project.RoyaltySplitter.contract_type.abi]])

    def simulate(model_registry: str) -> str:
        args = encode(["address"] * 4, [provenance.address, model_registry, licenses.address, treasury.address])
        code = bytes(project.RoyaltySplitter.contract_type.deployment_bytecode.to_bytes()) + args
        try:
            preflight(deployer.provider.web3, {"from": deployer.address, "data": code}, table)
        except WouldRevertError as error:
            return str(error)
        return "deploys"

    assert create_address(deployer.address, int(deployer.nonce)) == splitter_at
    assert simulate(models.address) == "deploys"
    assert "RoyaltySplitter__BadConfig" in simulate(other_models.address)
    with ape.reverts(project.RoyaltySplitter.RoyaltySplitter__BadConfig):
        deployer.deploy(project.RoyaltySplitter, provenance, other_models, licenses, treasury)
