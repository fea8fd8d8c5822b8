"""The memoised BN254 precompiles (tests/bn254_memo.py) give py_ecc's results, compute each new
input, reuse a repeated one, and refuse a bad one every time."""

from __future__ import annotations

import importlib

import pytest
from eth_utils import ValidationError
from py_ecc.optimized_bn128 import G1, G2, add, multiply, neg, normalize

from tests import bn254_memo

pytestmark = pytest.mark.offchain  # no chain: once, in the anvil pass


def word(value: int) -> bytes:
    return value.to_bytes(32, "big")


def g1(point) -> bytes:  # type: ignore[no-untyped-def]
    x, y = normalize(point)
    return word(int(x)) + word(int(y))


def g2(point) -> bytes:  # type: ignore[no-untyped-def]
    x, y = normalize(point)  # EVM order: imaginary part first
    return word(int(x.coeffs[1])) + word(int(x.coeffs[0])) + word(int(y.coeffs[1])) + word(int(y.coeffs[0]))


def test_memoised_precompiles_agree_with_py_ecc_and_refuse_bad_points_each_time():
    bn254_memo.install()
    bn254_memo.install()  # idempotent: not wrapped twice
    ecmul = importlib.import_module("eth.precompiles.ecmul")
    ecpairing = importlib.import_module("eth.precompiles.ecpairing")
    mull, pairing = ecmul._ecmull, ecpairing._ecpairing
    assert hasattr(mull, "cache_info") and hasattr(pairing, "cache_info")
    assert not hasattr(mull.__wrapped__, "cache_info"), "wrapped once"

    before = mull.cache_info()
    for scalar in (7, 2**200 + 3, 7):
        x, y = mull(g1(G1) + word(scalar))
        assert g1(multiply(G1, scalar)) == word(int(x)) + word(int(y))
    after = mull.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (2, 1)

    balanced = g1(G1) + g2(G2) + g1(neg(G1)) + g2(G2)  # e(G1, G2) e(-G1, G2) = 1
    unbalanced = g1(G1) + g2(G2) + g1(add(G1, G1)) + g2(G2)
    assert pairing(memoryview(balanced)) is True and pairing(balanced) is True
    assert pairing(unbalanced) is False

    off_curve = word(1) + word(3) + word(5)
    for _ in range(2):
        with pytest.raises(ValidationError, match="not on the curve"):
            mull(off_curve)
