"""The on-chain side of a circuit: the EZKL Solidity verifier, compiled with the project's solc,
and proofs turned into the `(bytes proof, uint256[] instances)` the verifier and
`ProvenanceRegistry.attestInference` take.

A proof of K inferences carries 3 K public instances: K input commitments, K scores, then each
asset's proven digest, the top `PROVEN_DIGEST_BITS` bits of the keccak256 of its content digest
as one field element (`proven_digest`, the Python twin of the registry's `provenDigestOf`). A
proven digest cannot be turned back into the content digest: a proof is matched to assets by
comparing proven digests (`ProofCalldata.names`), and the registry matches
it by each record's input binding (`input_binding`, the twin of `ProvenanceRegistry._binding`).

ezkl renders the verifier, then tries to compile it through svm, which downloads solc and fails
offline; the rendered file is what matters, so that failure is tolerated when the file was written
and the file is compiled here with the same solc 0.8.28 that builds the contracts.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ezkl as _ezkl
from eth_utils.crypto import keccak

from zkml.errors import ZkmlError

# ezkl ships stubs that mark every keyword with a default as required; use it untyped.
ezkl: Any = _ezkl

FIELD_MODULUS = 21888242871839275222246405745257275088548364400416034343698204186575808495617
"""The BN254 scalar field: public instances are elements of it."""

EIP170_LIMIT = 24_576
"""Largest runtime code a contract may have on Ethereum and its L2s."""

PROVEN_DIGEST_BITS = 253
"""Bits of a proven digest (`ProvenanceRegistry.PROVEN_DIGEST_BITS`): the top 253 of the content
digest's keccak256, one input felt and one public instance. Below 2^253 < the field modulus, so it is a field
element as it is; the circuit takes its inputs without range checks
(`PinnedSettings.ignore_range_check_inputs_outputs`), so it passes whole."""

INSTANCES_PER_ASSET = 3
"""Public instances per proven asset: its input commitment, its score and its proven digest."""

VERIFIER_CONTRACT = "Halo2Verifier"
_VK_DIGEST = re.compile(r"mstore\(0x[0-9a-f]+, (0x[0-9a-f]{64})\) // vk_digest")


class VerifierError(ZkmlError):
    """The verifier could not be rendered or compiled, or does not fit on chain."""


@dataclass(frozen=True)
class CompiledVerifier:
    source: Path
    abi: list[dict[str, Any]]
    bytecode: bytes
    runtime_size: int
    vk_digest: bytes
    """The verifying-key digest the verifier embeds (what `ModelRegistry.bindVerifier` pins)."""


@dataclass(frozen=True)
class ProofCalldata:
    """A proof's bytes and public instances, read in `attestInference`'s layout: n commitments,
    n scores, n proven digests. VerifierError for a count that is not a positive multiple of
    `INSTANCES_PER_ASSET`."""

    proof: bytes
    instances: list[int]

    def __post_init__(self) -> None:
        if not self.instances or len(self.instances) % INSTANCES_PER_ASSET:
            raise VerifierError(
                f"{len(self.instances)} instances are not {INSTANCES_PER_ASSET} per asset "
                "(commitment, score, proven digest): not a proof of the curation head"
            )

    @property
    def count(self) -> int:
        """How many assets (inferences) the proof covers."""
        return len(self.instances) // INSTANCES_PER_ASSET

    @property
    def commitments(self) -> list[int]:
        """Each asset's input commitment, in order."""
        return self.instances[: self.count]

    @property
    def scores(self) -> list[int]:
        """The signed fixed-point scores (field elements above (p - 1) / 2 are negative)."""
        return [decode_signed(value) for value in self.instances[self.count : 2 * self.count]]

    @property
    def proven_digests(self) -> list[int]:
        """Each asset's proven digest instance, in order, as it is: the circuit passes any field
        element through, so one of 2^PROVEN_DIGEST_BITS or more (which no content digest has)
        is returned too, and `names` is false for it."""
        return self.instances[2 * self.count :]

    def names(self, digests: Sequence[bytes]) -> bool:
        """Whether the proof's proven digests are those of `digests` (32-byte content digests), in
        order and as many: what can be checked of a content digest, since the proof carries only
        its top `PROVEN_DIGEST_BITS` bits. ValueError for a digest that is not 32 bytes."""
        return self.proven_digests == [proven_digest(digest) for digest in digests]


def deploy_verifier(owner: Any, compiled: CompiledVerifier) -> Any:
    """Deploy a compiled verifier from an ape account (it is not one of the project's contracts,
    so ape knows it only through this contract type)."""
    from ape.contracts import ContractContainer
    from ethpm_types import ContractType

    contract_type = ContractType.model_validate(
        {
            "contractName": VERIFIER_CONTRACT,
            "abi": compiled.abi,
            "deploymentBytecode": {"bytecode": "0x" + compiled.bytecode.hex()},
        }
    )
    return owner.deploy(ContractContainer(contract_type))


def proven_digest(digest: bytes) -> int:
    """A 32-byte content digest as the circuit reads it and passes it through: the top
    `PROVEN_DIGEST_BITS` (253) bits of its keccak256, as an integer
    (`ProvenanceRegistry.provenDigestOf`). Hashing first keeps every bit of the digest: two
    digests share a proven digest only by a 2^253 search. ValueError for any other length."""
    if len(digest) != 32:
        raise ValueError(f"a content digest is 32 bytes, not {len(digest)}")
    return int.from_bytes(keccak(digest), "big") >> (256 - PROVEN_DIGEST_BITS)


def input_binding(digest: bytes, commitment: int) -> bytes:
    """The input binding the registry stores for a record with content digest `digest` and input
    commitment `commitment` (`getAsset(digest).inputBinding`, `ProvenanceRegistry._binding`):
    keccak256(abi.encode(uint256 provenDigest, uint256 commitment)), the two as 32-byte
    big-endian words. What a proof's (commitment, proven digest) at the asset's position must
    hash to. A record registered with commitment 0 stores no binding (0) instead, which no
    proof matches; this function does not model that case. ValueError for a digest that is not
    32 bytes or a commitment outside [0, 2^256)."""
    if not 0 <= commitment < 1 << 256:
        raise ValueError(f"an input commitment is a uint256, not {commitment}")
    return keccak(proven_digest(digest).to_bytes(32, "big") + commitment.to_bytes(32, "big"))


def felt_to_int(felt: str) -> int:
    """An ezkl proof-file instance (little-endian hex) as an integer."""
    raw = bytes.fromhex(felt.removeprefix("0x"))
    return int.from_bytes(raw[::-1], "big")


def decode_signed(value: int) -> int:
    return value - FIELD_MODULUS if value > (FIELD_MODULUS - 1) // 2 else value


def proof_calldata(proof_json: dict[str, Any]) -> ProofCalldata:
    """The verifier's arguments from an ezkl proof file's contents."""
    try:
        proof = bytes.fromhex(str(proof_json["hex_proof"]).removeprefix("0x"))
        (instances,) = proof_json["instances"]
        values = [felt_to_int(felt) for felt in instances]
    except (KeyError, ValueError, TypeError) as exc:
        raise VerifierError(f"not an ezkl proof: {exc}") from exc
    return ProofCalldata(proof, values)


def render_verifier(vk: Path, settings: Path, srs: Path, out: Path) -> Path:
    """Write the Solidity verifier of a verifying key to `out` (blocking; runs ezkl's coroutine)."""
    abi = out.with_suffix(".abi.json")
    out.unlink(missing_ok=True)

    async def render() -> str | None:
        """None when rendered; the error text when ezkl failed (judged below, off the loop)."""
        try:
            await ezkl.create_evm_verifier(
                vk_path=str(vk),
                settings_path=str(settings),
                sol_code_path=str(out),
                abi_path=str(abi),
                srs_path=str(srs),
                reusable=False,
            )
        except RuntimeError as exc:
            return str(exc)
        return None

    failure = asyncio.run(render())
    # The svm download of solc fails offline after the source is written; anything else is fatal.
    if failure is not None and ("svm" not in failure or not out.exists()):
        raise VerifierError(f"ezkl could not render the verifier: {failure}")
    if not out.exists() or out.stat().st_size == 0:
        raise VerifierError(f"ezkl wrote no verifier to {out}")
    abi.unlink(missing_ok=True)
    return out


def vk_digest_of(source: str) -> bytes:
    match = _VK_DIGEST.search(source)
    if match is None:
        raise VerifierError("the verifier source carries no vk_digest")
    return bytes.fromhex(match.group(1)[2:])


def compile_verifier(source: Path, solc: Path, *, runs: int = 1) -> CompiledVerifier:
    """Compile a rendered verifier with `solc` (the project's solc 0.8.28, native or solc-js).
    Optimizer runs default to 1: the verifier is one big assembly block, and size, not call
    cost, is what keeps it under EIP-170."""
    text = source.read_text(encoding="utf8")
    request = {
        "language": "Solidity",
        "sources": {source.name: {"content": text}},
        "settings": {
            "optimizer": {"enabled": True, "runs": runs},
            "evmVersion": "cancun",
            "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
        },
    }
    try:
        done = subprocess.run(
            [str(solc), "--standard-json"], input=json.dumps(request), capture_output=True, text=True, check=True
        )
        output = json.loads(done.stdout)
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        raise VerifierError(f"{solc} could not compile {source}: {exc}") from exc
    errors = [e for e in output.get("errors", []) if e.get("severity") == "error"]
    if errors:
        raise VerifierError(f"{source}: {errors[0].get('formattedMessage', errors[0])}")
    try:
        contract = output["contracts"][source.name][VERIFIER_CONTRACT]
    except KeyError as exc:
        raise VerifierError(f"{source} has no contract {VERIFIER_CONTRACT}") from exc
    runtime = bytes.fromhex(contract["evm"]["deployedBytecode"]["object"])
    if len(runtime) > EIP170_LIMIT:
        raise VerifierError(
            f"the verifier's runtime code is {len(runtime):,} bytes, over the EIP-170 limit of {EIP170_LIMIT:,}: "
            "use fewer columns (num_inner_cols 1) or a smaller circuit"
        )
    return CompiledVerifier(
        source=source,
        abi=contract["abi"],
        bytecode=bytes.fromhex(contract["evm"]["bytecode"]["object"]),
        runtime_size=len(runtime),
        vk_digest=vk_digest_of(text),
    )
