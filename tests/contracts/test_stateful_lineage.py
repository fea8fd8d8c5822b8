"""Stateful property test of lineage: random register / derive / commit-and-claim sequences,
with an adversary, against the real registry.

Each derivation buys a licence of every parent and registers with the parents sorted; some steps
are attacks instead (the asset as its own parent, an unknown parent, a duplicate, descending
order, re-registering an existing digest with new parents, a missing licence) and must revert with
their named error, leaving the graph unchanged.

Commit-and-claim steps put the adversary (a stranger acting with public data) in the middle of
an honest batch: it squats a committed member by registering its digest first (and may derive
from the squatted record), the parent's creator attaches richer terms and buys a licence TO the
committer, and the stranger tries to claim with that licence. The claim with the committed
licences must take every member over with exactly its committed creator, parents and shares.

After every step, read back from the chain alone (`parentsOf`, `getAsset`, `creatorOf`): the
graph is acyclic (a depth-first search finds no back edge), every record's parents, shares,
creator and depth are exactly those of its last registration (depth = 1 + the deepest parent's
at that time; lineage never changes but by a takeover).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import ape
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from agents.core.merkle import BatchTree
from tests.contracts.helpers import asset_record, attach_terms, buy_license, digest, register_asset, stateful_settings

pytestmark = [pytest.mark.slow, pytest.mark.anvil_pass]  # as fast on anvil: evens out the passes

ATTACKS = ("none", "self", "unknown", "duplicate", "descending", "re-register", "no-licence")


def make_machine(
    chain: Any, core: Any, creators: tuple[Any, ...], stranger: Any, model_id: int
) -> type[RuleBasedStateMachine]:
    provenance, licenses = core.provenance, core.licenses
    creators_by_address = {a.address: a for a in (*creators, stranger)}

    class Lineage(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.snapshot()
            self.parents: dict[bytes, tuple[bytes, ...]] = {}  # every registered asset, in order
            self.creator: dict[bytes, str] = {}
            self.depth: dict[bytes, int] = {}  # as recorded at the asset's (last) registration
            self.shares: dict[bytes, int] = {}  # derivative share of each asset's terms
            self.terms: dict[bytes, int] = {}
            self.serial = 0

        def teardown(self) -> None:
            chain.restore(self.snapshot)

        def fresh_label(self) -> str:
            self.serial += 1
            return f"lineage/{self.serial}"

        def add(self, label: str, creator: Any, parents: tuple[bytes, ...], share: int) -> None:
            record = asset_record(label, creator, model_id, parents=parents)
            licence_ids = [buy_license(licenses, creator, self.terms[p]) for p in record.parents]
            register_asset(provenance, creator, record, licence_ids)
            self.record(record)
            self.offer(record.content_digest, creator, share)

        def record(self, record: Any) -> None:
            """Ghost of a (re)registration: the record as it now stands on chain."""
            digest_ = record.content_digest
            self.parents[digest_] = record.parents
            self.creator[digest_] = record.creator
            self.depth[digest_] = 1 + max((self.depth[p] for p in record.parents), default=-1)

        def offer(self, asset: bytes, creator: Any, share: int) -> None:
            self.terms[asset] = attach_terms(licenses, creator, asset, price=0, derivative_bps=share)
            self.shares[asset] = share

        @rule(c=st.integers(0, 1), share=st.integers(0, 300))
        def register_root(self, c: int, share: int) -> None:
            self.add(self.fresh_label(), creators[c], (), share)

        @rule(
            c=st.integers(0, 1),
            picks=st.lists(st.integers(0, 10**6), min_size=1, max_size=4),
            share=st.integers(0, 300),
            # Half honest derivations, half attacks.
            attack=st.one_of(st.just("none"), st.sampled_from(ATTACKS[1:])),
        )
        def derive(self, c: int, picks: list[int], share: int, attack: str) -> None:
            creator = creators[c]
            if not self.parents:
                self.add(self.fresh_label(), creators[1 - c], (), share)
            known = list(self.parents)
            chosen = tuple(sorted({known[i % len(known)] for i in picks}))
            if attack == "none":
                self.add(self.fresh_label(), creator, chosen, share)
                return
            label = self.fresh_label()
            record = asset_record(label, creator, model_id, parents=chosen)
            licence_ids = [buy_license(licenses, creator, self.terms[p]) for p in chosen]
            errors = provenance
            if attack == "self":
                parents = tuple(sorted((*chosen, record.content_digest)))
                licence_ids = [*licence_ids, licence_ids[0]]
                expected = (errors.ProvenanceRegistry__SelfParent, {"contentDigest": record.content_digest})
            elif attack == "unknown":
                ghost = digest(label + "/never-registered")
                parents = tuple(sorted((*chosen, ghost)))
                licence_ids = [*licence_ids, licence_ids[0]]
                expected = (errors.ProvenanceRegistry__UnknownParent, {"parent": ghost})
            elif attack == "duplicate":
                parents = (chosen[0], *chosen)
                licence_ids = [licence_ids[0], *licence_ids]
                expected = (errors.ProvenanceRegistry__DuplicateParent, {"parent": chosen[0]})
            elif attack == "descending":
                if len(chosen) < 2:
                    return
                parents = tuple(reversed(chosen))
                expected = (errors.ProvenanceRegistry__ParentsNotSorted, {"index": 1})
            elif attack == "re-register":
                # Adding parents to an asset that exists (and may have children) by registering it again.
                target = known[picks[0] % len(known)]
                record = replace(record, content_digest=target)
                parents = tuple(p for p in chosen if p != target)
                if not parents:
                    return
                licence_ids = [buy_license(licenses, creator, self.terms[p]) for p in parents]
                expected = (errors.ProvenanceRegistry__AlreadyRegistered, {"contentDigest": target})
            else:  # no-licence: the creator holds none of the first parent's licences
                parents = chosen
                licence_ids[0] = (self.terms[chosen[0]] << 64) | (2**64 - 1)
                held = licenses.balanceOf(creator, licence_ids[0])  # earlier failed attacks leave spares
                licenses.safeTransferFrom(creator, creators[1 - c], licence_ids[0], held, b"", sender=creator)
                expected = (licenses.LicenseManager__NoLicense, {"holder": creator.address})
            error, fields = expected
            with ape.reverts(error, **fields):
                provenance.register(replace(record, parents=parents).as_tuple(), licence_ids, sender=creator)

        @rule(
            c=st.integers(0, 1),
            picks=st.lists(st.lists(st.integers(0, 10**6), max_size=2), min_size=1, max_size=3),
            squat=st.booleans(),
            squatter_derives=st.booleans(),
            tempt=st.booleans(),
        )
        def commit_then_claim(
            self, c: int, picks: list[list[int]], squat: bool, squatter_derives: bool, tempt: bool
        ) -> None:
            """An honest batch with the adversary in the middle (see the module docstring)."""
            creator, other = creators[c], creators[1 - c]
            if not self.parents:
                self.add(self.fresh_label(), other, (), 100)
            known = list(self.parents)
            members = []
            for choice in picks:
                parents = tuple(sorted({known[i % len(known)] for i in choice}))
                record = asset_record(self.fresh_label(), creator, model_id, parents=parents)
                licences = tuple(buy_license(licenses, creator, self.terms[p]) for p in record.parents)
                members.append(replace(record, license_ids=licences))
            tree = BatchTree([m.leaf() for m in members])
            receipt = provenance.registerBatchLeaves(list(tree.leaves), sender=creator)
            batch = int(receipt.events.filter(provenance.BatchCommitted)[0].batchId)
            target = members[0]
            if squat:  # the stranger registers the member's digest first, as an original of its own
                squatted = asset_record("squat", stranger, model_id)
                squatted = replace(squatted, content_digest=target.content_digest)
                register_asset(provenance, stranger, squatted)
                self.record(squatted)
                self.offer(target.content_digest, stranger, 300)
                if squatter_derives:  # ... and derives from it, so the record taken over has a child
                    self.add(self.fresh_label(), stranger, (target.content_digest,), 0)
            if tempt and target.parents:  # the parent's creator plants a richer licence on the committer
                parent = target.parents[0]
                owner = creators_by_address[self.creator[parent]]
                rich = attach_terms(licenses, owner, parent, price=0, derivative_bps=5_000)
                planted = [buy_license(licenses, owner, rich, to=creator), *target.license_ids[1:]]
                with ape.reverts(provenance.ProvenanceRegistry__InvalidProof):
                    provenance.claimFromBatch(batch, 0, target.as_tuple(), tree.proof(0), planted, sender=stranger)
            for index, member in enumerate(members):
                claim = provenance.claimFromBatch(
                    batch, index, member.as_tuple(), tree.proof(index), list(member.license_ids), sender=stranger
                )
                taken_over = claim.events.filter(provenance.AssetSuperseded)
                assert len(taken_over) == (1 if squat and index == 0 else 0)
                self.record(member)
                expected = [self.shares[p] for p in member.parents]
                assert list(provenance.parentsOf(member.content_digest)[1]) == expected
                self.offer(member.content_digest, creator, 200)

        @invariant()
        def graph_is_a_dag_of_the_last_registrations(self) -> None:
            for asset, parents in self.parents.items():
                on_chain, _ = provenance.parentsOf(asset)
                on_chain = tuple(bytes(p) for p in on_chain)
                assert on_chain == parents, "lineage changed but by a registration"
                stored = provenance.getAsset(asset)
                assert stored.depth == self.depth[asset]
                assert stored.creator == self.creator[asset]
            # From the chain alone: depth-first search for a back edge.
            state: dict[bytes, int] = {}

            def visit(node: bytes) -> None:
                state[node] = 1
                for parent in provenance.parentsOf(node)[0]:
                    parent = bytes(parent)
                    assert state.get(parent) != 1, "cycle in the lineage graph"
                    if parent not in state:
                        visit(parent)
                state[node] = 2

            for asset in self.parents:
                if asset not in state:
                    visit(asset)

    return Lineage


def test_lineage_stays_acyclic_under_random_sequences(chain, core, model_id, creator, other_creator, stranger):
    run_state_machine_as_test(
        make_machine(chain, core, (creator, other_creator), stranger, model_id),
        # 4 x 12 steps in the suite's budget; PROOFMINT_STATEFUL_SCALE=10 for a longer hunt
        settings=stateful_settings(examples=4, steps=12),
    )
