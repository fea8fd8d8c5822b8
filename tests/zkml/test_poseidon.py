"""zkml.poseidon: the native Poseidon hash is ezkl's (`ezkl.poseidon_hash`) on edge and random
field elements of every length a head row has, refuses values that are not field elements, and is
built once into its cache."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import ezkl
import pytest

from zkml.errors import ZkmlError
from zkml.evm import FIELD_MODULUS
from zkml.pipeline import HeadInput, input_commitment, input_felts
from zkml.poseidon import PoseidonError, build_library, hash_with_ezkl, hasher, load_native, poseidon_hash

EDGES = (0, 1, 2, FIELD_MODULUS - 1, FIELD_MODULUS - 2, 1 << 64, (1 << 253) - 1, FIELD_MODULUS // 2)


def ezkl_hash(values: list[int]) -> int:
    (hashed,) = ezkl.poseidon_hash([value.to_bytes(32, "little").hex() for value in values])
    return int.from_bytes(bytes.fromhex(hashed), "little")


@pytest.fixture(scope="module")
def native(tmp_path_factory: pytest.TempPathFactory):
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.fail("no C compiler: make setup installs gcc")
    return load_native(build_library(tmp_path_factory.mktemp("native")))


def test_the_native_hash_is_ezkls_on_edge_and_random_values(native) -> None:
    rng = random.Random(20261130)
    for length in [*range(1, 10), 33, 64, 65, 66, 130]:
        for _ in range(4):
            values = [rng.choice([rng.randrange(FIELD_MODULUS), rng.choice(EDGES)]) for _ in range(length)]
            message = b"".join(v.to_bytes(32, "little") for v in values)
            expected = ezkl_hash(values)
            assert native(message, length) == expected, (length, values)
            assert hash_with_ezkl(message, length) == expected


def test_the_hash_depends_on_order_length_and_every_value(native) -> None:
    values = [3, 1, 4, 1, 5]
    message = b"".join(v.to_bytes(32, "little") for v in values)
    base = native(message, 5)
    assert native(message, 4) != base  # a prefix
    assert poseidon_hash([1, 3, 4, 1, 5]) != base  # an order
    assert poseidon_hash([*values, 0]) != base  # a zero appended (no padding collision)
    for i in range(5):
        changed = list(values)
        changed[i] += 1
        assert poseidon_hash(changed) != base


def test_the_product_uses_the_native_build(native) -> None:
    assert hasher() is not hash_with_ezkl, "the native library did not build in this checkout"
    assert poseidon_hash([7, 8]) == ezkl_hash([7, 8])


def test_a_head_rows_commitment_is_ezkls_hash_of_its_felts() -> None:
    rng = random.Random(5)
    for _ in range(5):
        row = HeadInput([rng.uniform(-1.0, 1.0) for _ in range(64)], rng.randbytes(32))
        felts = input_felts(row, 13)
        (hashed,) = ezkl.poseidon_hash(felts)
        assert input_commitment(row, 13) == int.from_bytes(bytes.fromhex(hashed), "little")


@pytest.mark.parametrize("bad", [FIELD_MODULUS, FIELD_MODULUS + 5, (1 << 256) - 1, -1])
def test_a_value_that_is_not_a_field_element_is_refused(bad: int) -> None:
    with pytest.raises(PoseidonError, match="value 1 is not a field element"):
        poseidon_hash([5, bad, 6])


def test_the_native_code_refuses_a_value_at_or_above_the_modulus_itself(native) -> None:
    """The library's own check (a caller handing it raw bytes), naming the value."""
    message = (5).to_bytes(32, "little") + FIELD_MODULUS.to_bytes(32, "little")
    with pytest.raises(PoseidonError, match="value 1 is not below the field modulus"):
        native(message, 2)


def test_nothing_to_hash_is_refused() -> None:
    with pytest.raises(ValueError, match="nothing to hash"):
        poseidon_hash([])


def test_the_library_is_built_once_and_reused(tmp_path: Path) -> None:
    first = build_library(tmp_path)
    built = first.stat().st_mtime_ns
    assert build_library(tmp_path) == first
    assert first.stat().st_mtime_ns == built
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".so"] == [first.name]


def test_a_failing_compiler_is_an_error_naming_it_and_leaves_no_library(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "/bin/false")
    with pytest.raises(ZkmlError, match="/bin/false failed"):
        build_library(tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.suffix in (".so", ".tmp")]
