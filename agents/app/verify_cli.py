"""`proofmint verify DIGEST|CID`: an auditor's check of one registered asset from public data,
one line per fact (`agents.app.audit` does the work).

Exit status 0 when every fact that applies holds (with `--strict`, when every fact applies and
holds), 1 when one fails (the line says which and why), 2 for input the command cannot use (not
a digest or CID, an asset the registry does not hold, no deployment record, no node at --rpc,
content none of the sources has), in one line on standard error.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import click

from agents.app.commands import recorded_deployment
from agents.app.keys import hex32_option
from agents.app.store_cli import CommandError, store_option
from agents.core.errors import ProofmintError
from agents.core.toolchain import project_root

DEFAULT_CIRCUITS = Path(".cache") / "zkml-agents"
"""Where the agents' circuits are cached (`agents.app.wiring.build_head_circuits`), under the
repository root."""
MARKS = {"ok": "ok  ", "fail": "FAIL", "skipped": "skip"}


def connect(rpc: str) -> Any:
    """A web3 connection to the node at `rpc`, checked with one call (CommandError when no node
    answers there)."""
    from web3 import HTTPProvider, Web3

    web3 = Web3(HTTPProvider(rpc, exception_retry_configuration=None, request_kwargs={"timeout": 30}))
    try:
        web3.eth.chain_id  # noqa: B018 - the probe
    except Exception as err:  # refused, unresolvable, not JSON-RPC: all one line
        raise CommandError(f"cannot reach a node at {rpc} ({_reason(err)}); start it, or pass --rpc URL") from None
    return web3


def _reason(err: BaseException) -> str:
    """Why a connection failed, in a few words: the OS's reason where requests buries one
    (`[Errno 111] Connection refused`), else the first line of the message."""
    text = str(err)
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
    if found:
        return found.group(1).strip()
    first = text.splitlines()[0] if text else type(err).__name__
    return first if len(first) <= 120 else first[:119] + "…"


def deployment_of(path: Path) -> tuple[dict[str, str], int, int | None]:
    """The contract addresses of a deployment record, the ProvenanceRegistry's deployment block
    (where its events start) and the record's chain id."""
    from agents.runtime.chain import load_addresses

    addresses = load_addresses(path)
    record = json.loads(path.read_text(encoding="utf8"))
    block = next((c.get("block_number", 0) for c in record["contracts"] if c.get("name") == "ProvenanceRegistry"), 0)
    chain_id = record.get("chainId")
    return addresses, int(block or 0), int(chain_id) if isinstance(chain_id, int) else None


@contextlib.asynccontextmanager
async def open_sources(
    store_dir: Path, store_explicit: bool, cars: tuple[Path, ...], gateway: str | None
) -> AsyncIterator[Any]:
    """The sources in the order they are asked: the CAR files, the gateway, then the store (the
    default store only when it exists: other sources may be all there is)."""
    from agents.app.audit import CarSource, GatewaySource, Source, Sources, StoreSource
    from agents.storage.store import LocalStore

    listed: list[Source] = [CarSource(car) for car in cars]
    session = None
    if gateway is not None:
        if not gateway.startswith(("http://", "https://")):
            raise CommandError(f"--gateway {gateway!r} is not an http(s) URL; give one such as https://ipfs.io")
        import aiohttp

        session = aiohttp.ClientSession()
        listed.append(GatewaySource(gateway, session))
    try:
        if await asyncio.to_thread(store_dir.is_dir):
            listed.append(StoreSource(LocalStore(store_dir)))
        elif store_explicit or not listed:
            raise CommandError(
                f"no store at {store_dir}; pass --store (or set PROOFMINT_STORE to) the folder with the asset's "
                "files, or --car FILE or --gateway URL"
            )
        yield Sources(listed)
    finally:
        if session is not None:
            await session.close()


def render(report: Any, strict: bool) -> str:
    """The report as text: a heading, one line per fact, the verdict."""
    width = max(len(f.name) for f in report.facts)
    asset = report.asset
    lines = [
        f"asset 0x{report.digest.hex()} (#{asset['seq']}, model version {asset['modelId']}, creator "
        f"{asset['creator']}) in ProvenanceRegistry {report.registry} on chain {report.chain_id}"
    ]
    lines += [f"{MARKS[f.status.value]}  {f.name:<{width}}  {f.detail}" for f in report.facts]
    counts = {s: sum(1 for f in report.facts if f.status.value == s) for s in ("ok", "fail", "skipped")}
    tally = f"{counts['ok']} ok, {counts['fail']} failed, {counts['skipped']} skipped"
    failed = report.failed(strict=strict)
    if failed:
        lines.append(f"NOT VERIFIED: {', '.join(f.name for f in failed)} ({tally}{', --strict' if strict else ''})")
    else:
        lines.append(f"verified: every fact that applies holds ({tally})")
    return "\n".join(lines)


@click.command("verify")
@click.argument("target", metavar="DIGEST|CID")
@click.option(
    "--rpc", default="http://127.0.0.1:8545", show_default=True, help="JSON-RPC endpoint of the asset's chain"
)
@click.option(
    "--deployment",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Deployment record (default: the one `ape run deploy --network RPC` or `proofmint up` wrote for --rpc)",
)
@store_option()
@click.option(
    "--car",
    "cars",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="A CAR file with the asset's files (repeatable; asked before the gateway and the store)",
)
@click.option("--gateway", default=None, help="An HTTP gateway (GET URL/ipfs/CID), e.g. https://ipfs.io")
@click.option(
    "--proof-tx", default=None, help="Check this transaction's proof (0x and 64 hex) instead of the attesting one"
)
@click.option(
    "--from-block",
    type=click.IntRange(min=0),
    default=None,
    help="Where to look for InferenceAttested events (default: the registry's deployment block in the record)",
)
@click.option(
    "--trust-anchors",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="PEM CA certificates the C2PA signer must chain to (default: any signer, reported as not checked)",
)
@click.option(
    "--circuits",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Circuit folders for ezkl's check of the proof (default: the repository's .cache/zkml-agents)",
)
@click.option("--clip", default=None, help="open_clip model for the embedding (default: local-dir:models/tiny-clip)")
@click.option("--t2i", default=None, help="Model folder to re-generate with (default: the shipped models/tiny-t2i)")
@click.option("--strict", is_flag=True, help="A fact that cannot be checked (skipped) fails the audit too")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (facts with name, status, detail)")
@click.pass_context
def verify_command(
    ctx: click.Context,
    target: str,
    rpc: str,
    deployment: Path | None,
    store_dir: Path,
    cars: tuple[Path, ...],
    gateway: str | None,
    proof_tx: str | None,
    from_block: int | None,
    trust_anchors: Path | None,
    circuits: Path | None,
    clip: str | None,
    t2i: str | None,
    strict: bool,
    as_json: bool,
) -> None:
    """Check a registered asset from public data, one line per fact: its bytes are the registered
    digest and its CID; the parameters document hashes to paramsDigest; the public CLIP's
    embedding of the bytes gives the registered input commitment; a model version attested it and
    the proof in the attesting transaction names it and verifies again (ezkl with the pinned
    verifying key when its circuit is at hand, and the bound verifier through eth_call); the C2PA
    sidecar validates and binds the bytes; and, for the shipped generator on CPU, re-generating
    from the lineage gives the same bytes.

    DIGEST is the asset id (0x and 64 hex digits); CID that of its image. The files come from
    --car files, then --gateway, then the store (--store). A fact that cannot apply (no
    attestation yet, no sidecar, another model) is skipped and says why. Exit status: 0 verified,
    1 a fact failed, 2 unusable input."""
    from agents.app.audit import AuditOptions, ChainView, audit, parse_target
    from agents.runtime.chain import CORE, load_abis
    from agents.runtime.processes import quiet_libraries
    from zkml.settings import PINNED

    try:
        parse_target(target)  # before any slow setup
        tx = _tx_hash(proof_tx) if proof_tx is not None else None
        root = project_root()
        record = deployment or recorded_deployment(rpc)
        addresses, deployed_at, record_chain = deployment_of(record)
        web3 = connect(rpc)
        node_chain = int(web3.eth.chain_id)
        if record_chain is not None and record_chain != node_chain:
            raise CommandError(
                f"the deployment record {record} is of chain {record_chain}, the node at {rpc} is chain {node_chain}: "
                "pass the record of that chain (--deployment)"
            )
        registry = addresses["ProvenanceRegistry"]
        if not bytes(web3.eth.get_code(web3.to_checksum_address(registry))):
            raise CommandError(f"no contract at ProvenanceRegistry {registry} on chain {node_chain}: a stale record?")
        chain = ChainView(web3, addresses, load_abis(root, CORE), deployed_at if from_block is None else from_block)
        options = AuditOptions(
            clip=clip or f"local-dir:{root / 'models' / 'tiny-clip'}",
            t2i=Path(t2i) if t2i else root / "models" / "tiny-t2i",
            circuits=circuits if circuits is not None else root / DEFAULT_CIRCUITS,
            input_scale=PINNED.input_scale,
            trust_anchors=trust_anchors.read_bytes() if trust_anchors is not None else None,
            proof_tx=tx,
        )
        quiet_libraries()  # progress is this command's lines, not diffusers' bars
        explicit = ctx.get_parameter_source("store_dir") not in (None, click.core.ParameterSource.DEFAULT)

        async def main() -> Any:
            async with open_sources(store_dir, explicit, cars, gateway) as sources:
                return await audit(chain, target, sources, options, progress=lambda m: click.echo(m, err=True))

        report = asyncio.run(main())
    except ProofmintError as err:  # AuditError included
        raise CommandError(str(err)) from None
    except OSError as err:  # the node or the gateway went away mid-audit
        raise CommandError(f"lost the connection during the audit ({err}); check --rpc and --gateway") from None
    if as_json:
        click.echo(json.dumps(report.as_json(strict=strict), indent=2))
    else:
        click.echo(render(report, strict))
    if not report.ok(strict=strict):
        ctx.exit(1)


def _tx_hash(text: str) -> bytes:
    return hex32_option("a transaction hash", param_hint="--proof-tx")(None, None, text)
