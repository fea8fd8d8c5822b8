"""Differential: `bench/l1_data.py`'s FastLZ port against solady's `LibZip.flzCompress`, compiled
from the npm package by the project's solc and run on the chain under test (`FastLZReference`),
and its Fjord L1 data gas against the spec's formula.

Inputs: empty, one byte, the lengths around the 16-byte start of matching, runs that need long
and split matches, literal runs around 32 bytes, back-references at and past the 8,191-byte
window, seeded random inputs of many sizes and kinds, 100 KB, and real signed transactions of the
registration paths (their bytes checked against their hashes). Seeded; the seed is in every
failure message.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from ape.contracts import ContractContainer
from eth_utils.crypto import keccak
from ethpm_types import ContractType

from agents.core.merkle import AssetRecord, BatchTree
from agents.core.toolchain import solc_executable
from agents.deploy.deployment import CoreConfig, deploy_core
from bench.l1_data import (
    FJORD_COST_FASTLZ_COEF,
    FJORD_COST_INTERCEPT,
    FJORD_MIN_TRANSACTION_SIZE,
    SignedBytesError,
    fjord_l1_data_gas,
    flz_compress,
    l1_data_op_stack,
    signed_transaction_bytes,
)

SEED = 20261129
URI = "ipfs://bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def spec_l1_data_gas(fastlz_size: int) -> int:
    """The Fjord formula as the spec writes it, with its literal constants (not the module's)."""
    return max(100 * 10**6, -42_585_600 + 836_500 * fastlz_size) * 16 // 10**6


def same_as_libzip(reference: Any, data: bytes, label: str) -> bytes:
    """Compresses `data` both ways; fails naming the input and the first differing byte."""
    expected = bytes(reference.flzCompress(data))
    got = flz_compress(data)
    if got != expected:
        at = next(
            (i for i, (a, b) in enumerate(zip(got, expected, strict=False)) if a != b), min(len(got), len(expected))
        )
        pytest.fail(
            f"{label} (seed {SEED}): {len(data)} bytes in; LibZip gave {len(expected)} bytes, the port "
            f"{len(got)}; first difference at output byte {at}"
        )
    return expected


def abi_like(rng: random.Random, size: int, hashes: float = 0.3, addresses: float = 0.2) -> bytes:
    """Calldata-shaped bytes: a selector, then 32-byte words that are hashes (share `hashes`),
    addresses (share `addresses`), ABI offsets (0.15) or small numbers (the rest)."""
    out = bytearray(rng.randbytes(4))
    while len(out) < size:
        kind = rng.random()
        if kind < hashes:
            out += rng.randbytes(32)
        elif kind < hashes + addresses:
            out += bytes(12) + rng.randbytes(20)
        elif kind < hashes + addresses + 0.15:
            out += rng.choice((0x20, 0x40, 0xE0, 0x1C0)).to_bytes(32, "big")
        else:
            out += rng.randrange(1 << 16).to_bytes(32, "big")
    return bytes(out[:size])


def random_input(rng: random.Random, size: int) -> bytes:
    kind = rng.randrange(4)
    if kind == 0:
        return rng.randbytes(size)
    if kind == 1:
        return abi_like(rng, size)
    if kind == 2:  # a small alphabet: short, frequent matches
        return bytes(rng.choice(b"ab\x00") for _ in range(size))
    # pieces of earlier output repeated at random distances, some beyond the window
    out = bytearray(rng.randbytes(min(size, 64)))
    while len(out) < size:
        start = rng.randrange(len(out))
        out += out[start : start + rng.randint(1, 300)] + rng.randbytes(rng.randint(0, 40))
    return bytes(out[:size])


REFERENCE = Path(__file__).with_name("FastLZReference.sol")
LIBZIP = "solady/src/utils/LibZip.sol"
"""solady's LibZip from the npm dev dependency (node_modules/), compiled here rather than by ape:
as an ape dependency solady's hundreds of files would be unpacked into contracts/.cache, where
ape's source scan (500 files at most) would stop before the project's own sources."""


def compile_reference(solc: Path) -> dict[str, Any]:
    """FastLZReference and LibZip compiled by the project's solc from standard JSON with both
    sources inline (so the solc-js wrapper works too); the contract's ABI and creation code."""
    root = Path(__file__).resolve().parents[2]
    request = {
        "language": "Solidity",
        "sources": {
            "FastLZReference.sol": {"content": REFERENCE.read_text(encoding="utf8")},
            LIBZIP: {"content": (root / "node_modules" / LIBZIP).read_text(encoding="utf8")},
        },
        "settings": {
            "optimizer": {"enabled": True, "runs": 200},
            "evmVersion": "cancun",
            "outputSelection": {"FastLZReference.sol": {"FastLZReference": ["abi", "evm.bytecode.object"]}},
        },
    }
    done = subprocess.run([str(solc), "--standard-json"], input=json.dumps(request), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    output = json.loads(done.stdout)
    errors = [e["formattedMessage"] for e in output.get("errors", []) if e.get("severity") == "error"]
    assert not errors, errors
    return dict(output["contracts"]["FastLZReference.sol"]["FastLZReference"])


@pytest.fixture(scope="module")
def reference_type() -> ContractType:
    compiled = compile_reference(solc_executable(Path(__file__).resolve().parents[2]))
    return ContractType.model_validate(
        {
            "contractName": "FastLZReference",
            "abi": compiled["abi"],
            "deploymentBytecode": {"bytecode": "0x" + compiled["evm"]["bytecode"]["object"]},
        }
    )


@pytest.fixture
def reference(reference_type: ContractType, accounts: Any) -> Any:
    return accounts[0].deploy(ContractContainer(reference_type))


# ----------------------------------------------------------------------------- formula


def test_fjord_l1_data_gas_follows_the_spec_formula_at_and_past_its_floor() -> None:
    assert (FJORD_COST_INTERCEPT, FJORD_COST_FASTLZ_COEF, FJORD_MIN_TRANSACTION_SIZE) == (-42_585_600, 836_500, 100)
    # The floor of 100 bytes holds up to fastlzSize 170 and is left at 171 (836,500 * 171 - 42,585,600 = 100,455,900).
    assert fjord_l1_data_gas(0) == 1_600
    assert fjord_l1_data_gas(170) == 1_600
    assert fjord_l1_data_gas(171) == 1_607
    assert fjord_l1_data_gas(1_000) == 12_702  # 793,914,400 * 16 / 1e6 = 12,702.6, floored
    for size in (*range(0, 400), 10_000, 123_457):
        assert fjord_l1_data_gas(size) == spec_l1_data_gas(size)
    with pytest.raises(ValueError, match="fastlz_size"):
        fjord_l1_data_gas(-1)


# ----------------------------------------------------------------------------- FastLZ vs LibZip


@pytest.mark.chain
def test_flz_compress_equals_libzip_on_edge_inputs(reference: Any) -> None:
    rng = random.Random(SEED)
    inputs: list[tuple[str, bytes]] = [("empty", b""), ("one byte", b"\x00"), ("one 0xff", b"\xff")]
    # Matching starts with 16 bytes: shorter inputs are literals only.
    inputs += [(f"{n} zero bytes", bytes(n)) for n in range(2, 21)]
    inputs += [(f"{n} x 'ab'", b"ab" * (n // 2)) for n in (16, 17, 18, 40)]
    # A run of n equal bytes is 2 literals and one match of length code n - 9; codes of 263 and
    # more are split into pieces of 262 (n = 272 is the first split, n = 534 the second).
    runs = (*range(262, 276), *range(530, 538), 600, 4_000)
    inputs += [(f"run of {n}", bytes([7]) * n) for n in runs]
    # Literal runs are cut every 32 bytes.
    inputs += [(f"{n} random bytes", rng.randbytes(n)) for n in (31, 32, 33, 63, 64, 65, 97)]
    inputs += [("random then a run", rng.randbytes(40) + bytes(50) + rng.randbytes(5))]
    for label, data in inputs:
        same_as_libzip(reference, data, label)


@pytest.mark.chain
def test_flz_compress_equals_libzip_at_the_edge_of_the_match_window(reference: Any) -> None:
    """A 16-byte marker repeated `distance` bytes later, over zero filler: a back-reference at 8,191
    bytes, a literal past it. Both sides agree, and the outputs show which happened."""
    marker = random.Random(SEED + 1).randbytes(16)
    sizes = {}
    for distance in (8_190, 8_191, 8_192, 8_193):
        data = marker + bytes(distance - 16) + marker + bytes(20)
        sizes[distance] = len(same_as_libzip(reference, data, f"marker again after {distance} bytes"))
    # Past the window the second marker costs 17 literal bytes instead of a 2- or 3-byte match.
    assert min(sizes[8_192], sizes[8_193]) > max(sizes[8_190], sizes[8_191]) + 10


@pytest.mark.chain
def test_flz_compress_equals_libzip_on_random_inputs(reference: Any) -> None:
    rng = random.Random(SEED + 2)
    for case in range(40):
        size = int(2 ** rng.uniform(0, 12))  # 1 byte to 4 KiB, log-uniform
        data = random_input(rng, size)
        same_as_libzip(reference, data, f"random case {case} ({size} bytes)")


@pytest.mark.chain
@pytest.mark.anvil  # about 20M gas of LibZip: 17 s on py-evm, 0.1 s on anvil
def test_flz_compress_equals_libzip_on_100_kb(reference: Any) -> None:
    """100 KiB of calldata-shaped bytes, one word in ten a hash and one in ten an address: LibZip
    spends under 200 gas a byte on it, which keeps the call inside the 30M gas an `eth_call` gets
    (random bytes cost about 330 a byte and would not fit)."""
    rng = random.Random(SEED + 3)
    data = abi_like(rng, 100 * 1024, hashes=0.1, addresses=0.1)
    compressed = same_as_libzip(reference, data, "100 KiB of calldata-shaped bytes")
    assert len(compressed) == int(reference.flzCompressedLength(data))
    assert len(compressed) < len(data)


# ----------------------------------------------------------------------------- real transactions


@pytest.mark.chain
def test_signed_registrations_compress_as_libzip_and_price_as_the_fjord_formula(
    project: Any, chain: Any, accounts: Any, reference: Any
) -> None:
    rng = random.Random(SEED + 4)
    deployer, developer, creator = accounts[0], accounts[1], accounts[3]
    deployed = {d.name: d.address for d in deploy_core(project, deployer, chain, CoreConfig())}
    models = project.ModelRegistry.at(deployed["ModelRegistry"])
    provenance = project.ProvenanceRegistry.at(deployed["ProvenanceRegistry"])
    models.registerModel(
        (rng.randbytes(32), rng.randbytes(32), rng.randbytes(32), 0, 1_000, 500, URI), sender=developer
    )
    model_id = int(models.modelCount())

    def record() -> AssetRecord:
        return AssetRecord(
            rng.randbytes(32), str(creator.address), model_id, rng.randbytes(32), rng.randbytes(32), (), URI
        )

    records = [record() for _ in range(8)]
    tree = BatchTree([record().leaf() for _ in range(256)])
    receipts = {
        "register": provenance.register(record().as_tuple(), [], sender=creator),
        "registerMany of 8": provenance.registerMany(
            [r.as_tuple() for r in records], [[] for _ in records], sender=creator
        ),
        "registerBatchLeaves of 256": provenance.registerBatchLeaves(list(tree.leaves), sender=creator),
        "registerBatchRoot": provenance.registerBatchRoot(tree.root, 256, "ipfs://" + "b" * 59, sender=creator),
    }
    on_node = chain.provider.name == "foundry"
    for label, receipt in receipts.items():
        signed, source = signed_transaction_bytes(chain.provider, receipt)
        assert keccak(signed) == bytes.fromhex(str(receipt.txn_hash).removeprefix("0x"))
        assert source == (
            "eth_getRawTransactionByHash" if on_node else "re-serialized from the receipt's signed transaction"
        )
        # On anvil these are the node's bytes: re-serializing the receipt's transaction (the embedded
        # chain's way) gives the same.
        assert bytes(receipt.transaction.serialize_transaction()) == signed
        compressed = same_as_libzip(reference, signed, f"signed {label}")
        figure = l1_data_op_stack(signed)
        assert (figure.signed_size, figure.fastlz_size) == (len(signed), len(compressed))
        assert figure.l1_data_gas == spec_l1_data_gas(int(reference.flzCompressedLength(signed)))
    # One figure by hand: registerMany's L1 gas from LibZip's length and the spec's constants.
    signed, _ = signed_transaction_bytes(chain.provider, receipts["registerMany of 8"])
    fastlz_size = int(reference.flzCompressedLength(signed))
    assert fastlz_size > 171  # past the 100-byte floor: the regression itself is tested
    assert l1_data_op_stack(signed).l1_data_gas == (836_500 * fastlz_size - 42_585_600) * 16 // 1_000_000


@pytest.mark.chain
def test_signed_bytes_that_do_not_hash_to_the_mined_hash_are_refused(chain: Any, accounts: Any) -> None:
    receipt = accounts[0].transfer(accounts[1], 1)
    other = "0x" + keccak(b"another transaction").hex()
    forged = SimpleNamespace(txn_hash=other, transaction=receipt.transaction)
    with pytest.raises(SignedBytesError, match="not to the mined transaction's hash"):
        signed_transaction_bytes(chain.provider, forged)
