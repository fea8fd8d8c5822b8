"""Permit2 and x402's Permit2 proxies at their canonical addresses on a development chain.

Stock x402 clients sign Permit2 transfers for fixed addresses: the EIP-712 domain of Permit2 at
`PERMIT2_ADDRESS`, with x402's proxy (`UPTO_PROXY_ADDRESS` for `upto`, `EXACT_PROXY_ADDRESS` for
`exact` over Permit2) as the spender. Live networks have them (deterministic CREATE2
deployments); a development chain gets them here, from the vendored sources (`vendor/permit2/`,
`contracts/vendor/x402/`; see `vendor/README.md`), by placing each contract's runtime code at its
canonical address (`anvil_setCode` on anvil; the same on the embedded py-evm chain).

Runtime code is what a constructor returns, immutables filled in. Permit2's constructor caches
the chain id and its EIP-712 domain separator (which hashes its own address) as immutables;
`permit2_runtime` writes them for the canonical address at the byte offsets solc reports
(`immutableReferences`), so the code is what a deployment at that address would have left. The
proxies' one immutable is Permit2's address, the canonical one, so their code is copied from an
ordinary deployment.

Permit2 is built with its own settings (via-IR, 1,000,000 optimizer runs: it does not compile
without via-IR) by the project's pinned solc, apart from `ape compile`, and cached under
`.cache/permit2/` by the hash of its sources.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agents.core.errors import PermanentError
from agents.core.permits import EXACT_PROXY_ADDRESS, PERMIT2_ADDRESS, UPTO_PROXY_ADDRESS, domain_separator

UPTO_PROXY: Final = "x402UptoPermit2Proxy"
EXACT_PROXY: Final = "x402ExactPermit2Proxy"
PROXIES: Final = {UPTO_PROXY: UPTO_PROXY_ADDRESS, EXACT_PROXY: EXACT_PROXY_ADDRESS}
SOURCES: Final = Path("vendor") / "permit2"
_SETTINGS: Final = {
    "viaIR": True,
    "optimizer": {"enabled": True, "runs": 1_000_000},
    "evmVersion": "cancun",
    "metadata": {"bytecodeHash": "none"},
}
PERMIT2_ERRORS_NAME: Final = "Permit2"
PERMIT2_ERRORS: Final = [
    {"type": "error", "name": name, "inputs": [{"name": arg, "type": kind} for arg, kind in args]}
    for name, args in (
        ("InvalidNonce", ()),
        ("SignatureExpired", (("signatureDeadline", "uint256"),)),
        ("InvalidAmount", (("maxAmount", "uint256"),)),
        ("InvalidSigner", ()),
        ("InvalidSignature", ()),
        ("InvalidSignatureLength", ()),
        ("InvalidContractSignature", ()),
        ("LengthMismatch", ()),
        ("TransferFromFailed", ()),
    )
]
"""The errors Permit2 (and the vendored `SafeTransferLib`) revert with, so a refused charge names its reason."""


class Permit2Error(PermanentError):
    """Permit2 could not be built or placed (the message says why)."""


@dataclass(frozen=True)
class Permit2Build:
    """Permit2 compiled: its ABI, its runtime code with the immutables zeroed, and where solc put
    them (`immutables`: name -> byte offsets)."""

    abi: list[dict[str, Any]]
    runtime: bytes
    immutables: dict[str, tuple[int, ...]]


def build_permit2(root: Path, solc: Path) -> Permit2Build:
    """Permit2 from `root / SOURCES`, compiled by `solc` (standard JSON) or read from the cache."""
    import solcx

    folder = root / SOURCES
    files = sorted(folder.rglob("*.sol"))
    if not files:
        raise Permit2Error(f"no Permit2 sources under {folder}")
    sources = {f"permit2/{p.relative_to(folder).as_posix()}": {"content": p.read_text(encoding="utf8")} for p in files}
    standard = {
        "language": "Solidity",
        "sources": sources,
        "settings": {
            **_SETTINGS,
            "outputSelection": {
                "permit2/Permit2.sol": {"Permit2": ["abi", "evm.deployedBytecode"]},
                "permit2/EIP712.sol": {"": ["ast"]},
            },
        },
    }
    digest = hashlib.sha256(json.dumps(standard, sort_keys=True).encode()).hexdigest()[:16]
    cached = root / ".cache" / "permit2" / f"{digest}.json"
    if cached.is_file():
        out = json.loads(cached.read_text(encoding="utf8"))
    else:
        try:
            out = solcx.compile_standard(standard, solc_binary=str(solc), allow_empty=True)
        except solcx.exceptions.SolcError as exc:
            raise Permit2Error(f"solc could not build Permit2: {exc}") from exc
        cached.parent.mkdir(parents=True, exist_ok=True)
        tmp = cached.with_suffix(".tmp")
        tmp.write_text(json.dumps(out), encoding="utf8")
        tmp.replace(cached)
    contract = out["contracts"]["permit2/Permit2.sol"]["Permit2"]
    names = {
        str(node["id"]): node["name"]
        for node in out["sources"]["permit2/EIP712.sol"]["ast"]["nodes"][-1]["nodes"]
        if node.get("nodeType") == "VariableDeclaration"
    }
    references = contract["evm"]["deployedBytecode"]["immutableReferences"]
    return Permit2Build(
        abi=contract["abi"],
        runtime=bytes.fromhex(contract["evm"]["deployedBytecode"]["object"]),
        immutables={names[i]: tuple(int(r["start"]) for r in refs) for i, refs in references.items()},
    )


def permit2_runtime(build: Permit2Build, chain_id: int, address: str = PERMIT2_ADDRESS) -> bytes:
    """The runtime code Permit2's constructor leaves at `address` on chain `chain_id`."""
    values = {
        "_CACHED_CHAIN_ID": chain_id.to_bytes(32, "big"),
        "_CACHED_DOMAIN_SEPARATOR": domain_separator(chain_id, address),
    }
    if set(build.immutables) != set(values):
        raise Permit2Error(f"Permit2's immutables are {sorted(build.immutables)}, expected {sorted(values)}")
    code = bytearray(build.runtime)
    for name, offsets in build.immutables.items():
        for start in offsets:
            code[start : start + 32] = values[name]
    return bytes(code)


def set_code(provider: Any, address: str, code: bytes) -> None:
    """Puts `code` at `address` on a development chain: anvil's `anvil_setCode` (ape-foundry's
    `set_code`), or, on ape's embedded py-evm chain, the pending state changed and a block mined
    on it (the change is part of the chain from then on, snapshots included)."""
    backend: Any = getattr(provider, "evm_backend", None)
    chain = getattr(backend, "chain", None)
    if backend is None or chain is None:
        provider.set_code(address, code)
        return
    state = chain.get_vm().state
    state.set_code(bytes.fromhex(address[2:]), code)
    state.persist()
    chain.header = chain.header.copy(state_root=state.state_root)
    backend.mine_blocks()


def install_permit2(project: Any, provider: Any, deployer: Any, root: Path, solc: Path) -> dict[str, str]:
    """Permit2 and the x402 proxies at their canonical addresses (see the module docstring); code
    already there is left alone. Their names and addresses."""
    web3 = provider.web3
    chain_id = int(web3.eth.chain_id)
    placed = {"Permit2": PERMIT2_ADDRESS, **PROXIES}
    build = build_permit2(root, solc)
    if bytes(web3.eth.get_code(PERMIT2_ADDRESS)) == b"":
        set_code(provider, PERMIT2_ADDRESS, permit2_runtime(build, chain_id))
    for name, address in PROXIES.items():
        if bytes(web3.eth.get_code(address)) != b"":
            continue
        template = deployer.deploy(getattr(project, name), PERMIT2_ADDRESS)
        set_code(provider, address, bytes(web3.eth.get_code(str(template.address))))
    permit2 = web3.eth.contract(address=PERMIT2_ADDRESS, abi=build.abi)
    if bytes(permit2.functions.DOMAIN_SEPARATOR().call()) != domain_separator(chain_id):
        raise Permit2Error("Permit2 at its canonical address answers with another domain separator")
    return placed
