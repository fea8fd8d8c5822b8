"""Differential: the Python batch tree (agents.core.merkle) and the Solidity one agree on roots and
proofs over random batches of 1..1024 leaves; tampered proofs fail in both.

Seeded; the seed is in the test id so a failure names what to replay.
"""

from __future__ import annotations

import random

import ape
import pytest

from agents.core.merkle import BatchTree, verify_batch_proof

pytestmark = pytest.mark.chain

SEED = 20261123
SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 255, 256, 257, 1023, 1024, *random.Random(SEED).sample(range(10, 1024), 12)]


@pytest.mark.parametrize("count", SIZES)
def test_roots_and_proofs_agree(core, count):
    rng = random.Random(SEED * 7919 + count)
    leaves = [rng.randbytes(32) for _ in range(count)]
    tree = BatchTree(leaves)
    assert core.provenance.rootOf(leaves) == tree.root
    for index in {0, count - 1, *rng.sample(range(count), min(count, 4))}:
        proof = tree.proof(index)
        assert verify_batch_proof(leaves[index], index, count, proof, tree.root)
        assert core.provenance.processBatchProof(leaves[index], index, count, proof) == tree.root
        if proof:
            # Flip one bit of one sibling: both sides reject.
            j = rng.randrange(len(proof))
            bad = list(proof)
            bad[j] = bytes([bad[j][0] ^ 1]) + bad[j][1:]
            assert not verify_batch_proof(leaves[index], index, count, bad, tree.root)
            assert core.provenance.processBatchProof(leaves[index], index, count, bad) != tree.root
            # Wrong length: Python rejects, Solidity reverts with the expected length.
            assert not verify_batch_proof(leaves[index], index, count, proof[:-1], tree.root)
            with ape.reverts(
                core.provenance.ProvenanceRegistry__BadProofLength, given=len(proof) - 1, expected=len(proof)
            ):
                core.provenance.processBatchProof(leaves[index], index, count, proof[:-1])
