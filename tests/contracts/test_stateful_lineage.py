"""Stateful property test of lineage: random register / derive sequences against the real registry.

Each derivation buys a licence of every parent and registers with the parents sorted; some steps
are attacks instead (the asset as its own parent, an unknown parent, a duplicate, descending
order, re-registering an existing digest with new parents, a missing licence) and must revert with
their named error, leaving the graph unchanged.

After every step the graph read back from the chain alone (`parentsOf`, `getAsset`) must be
acyclic (a depth-first search finds no back edge), every recorded depth must be 1 + the deepest
parent's, and every asset's parents must be exactly those it was registered with (lineage is
immutable once written).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import ape
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.contracts.helpers import asset_record, attach_terms, buy_license, digest, register_asset, stateful_settings

pytestmark = pytest.mark.slow

ATTACKS = ("none", "self", "unknown", "duplicate", "descending", "re-register", "no-licence")


def make_machine(chain: Any, core: Any, creators: tuple[Any, ...], model_id: int) -> type[RuleBasedStateMachine]:
    provenance, licenses = core.provenance, core.licenses

    class Lineage(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.snapshot()
            self.parents: dict[bytes, tuple[bytes, ...]] = {}  # every registered asset, in order
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
            self.parents[record.content_digest] = record.parents
            self.terms[record.content_digest] = attach_terms(
                licenses, creator, record.content_digest, price=0, derivative_bps=share
            )

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

        @invariant()
        def graph_is_an_immutable_dag(self) -> None:
            depth: dict[bytes, int] = {}
            for asset, parents in self.parents.items():  # registration order
                on_chain, _ = provenance.parentsOf(asset)
                on_chain = tuple(bytes(p) for p in on_chain)
                assert on_chain == parents, "lineage changed after registration"
                # Every parent was registered before its child: a topological order exists, so no cycle.
                assert all(p in depth for p in on_chain)
                depth[asset] = 1 + max((depth[p] for p in on_chain), default=-1)
                assert provenance.getAsset(asset).depth == depth[asset]
            # The same, from the chain alone: depth-first search for a back edge.
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


def test_lineage_stays_acyclic_under_random_sequences(chain, core, model_id, creator, other_creator):
    run_state_machine_as_test(
        make_machine(chain, core, (creator, other_creator), model_id),
        settings=stateful_settings(examples=10, steps=15),
    )
