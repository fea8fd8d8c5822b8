"""The composition root: what a process of proofmint is made of, and how it is wired.

- `load_models`: the generator's worker processes and the curator (only for the daemons that
  need them); `open_parts`: the journal, the content store, the chain client, the publisher's
  identity and the prover's worker under one state folder; `build_agents`: the stages of the
  daemons asked for, from the one stage table (`agents.daemons.pipeline.STAGES`), with a wake-up
  queue per hand-off (`memory_queues` in process, `redis_queues` across processes).
- On a development chain, `prepare_chain` deploys the core contracts and registers what the
  project ships: the text-to-image model as a model version (with a training-data originators'
  tree) and the curation head's circuits (`build_head_circuits`, cached), each a model version
  with its EZKL verifier deployed and bound; `open_local` does all of it for `proofmint up`, the
  demo and the benchmarks.

`proofmint up` and `proofmint agent` (`agents.app.commands`), `make demo`, the pipeline tests and
`bench/pipeline.py` wire the product here. Contract calls in `prepare_chain` go through ape
(accounts on the development chain); the daemons then use plain web3 and the operator's key,
exactly as they would against any RPC.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agents.core.digests import weights_digest
from agents.core.merkle import DataTree
from agents.core.metering import DEFAULT_PRICING, RequestPricing
from agents.core.toolchain import project_root
from agents.daemons.charge import UptoStage
from agents.daemons.curate import CurateStage
from agents.daemons.generate import AdaptiveSteps, GenerateStage
from agents.daemons.market import MARKET, DeliverStage, MarketWatcher
from agents.daemons.pipeline import (
    BEFORE_DELIVERED,
    BEFORE_PUBLISHED,
    DEFAULT_DAEMONS,
    HANDOFFS,
    MANY,
    StageSpec,
    stages_of,
)
from agents.daemons.prove import ProveStage
from agents.daemons.publish import ModelInfo, PublishStage
from agents.daemons.register import ClaimStage, CommitStage, RegisterStage
from agents.daemons.runner import LEASE_TTL_S, Agents
from agents.daemons.settle import SettleStage, SweepStage
from agents.daemons.upscale import UpscaleStage
from agents.daemons.validate import Gathering, Validations, ValidationTarget
from agents.deploy.deployment import DEV_TOKEN, Deployed, deploy_core, deploy_dev_token
from agents.deploy.erc8004 import CONTRACTS as AGENT_CONTRACTS
from agents.deploy.erc8004 import ROLES, AgentDirectory, deploy_agent_registries, register_agents
from agents.deploy.permit2 import PERMIT2_ERRORS, PERMIT2_ERRORS_NAME, UPTO_PROXY, install_permit2
from agents.models.curator import DEFAULT_POLICY
from agents.models.head import HEAD_FOLDER, HeadError, HeadModel
from agents.models.upscaler import DEFAULT_UPSCALER
from agents.runtime import jobs
from agents.runtime.chain import ChainClient
from agents.runtime.inprocess import is_in_process
from agents.runtime.journal import Journal
from agents.runtime.processes import PROVER_PRELOAD, ignore_interrupts, worker_context
from agents.runtime.queues import MemoryQueue, WorkQueue
from agents.runtime.stage import Stage
from agents.runtime.telemetry import Metrics
from agents.storage.credentials import DevIdentity
from agents.storage.pgstore import open_store
from agents.storage.store import BlockStore

ZERO32: Final = b"\x00" * 32
HEAD_SIZES: Final = (4, 1)
T2I_DEVELOPER_BPS: Final = 1_000
T2I_DATA_BPS: Final = 500
MARKET_PRICE: Final = 10**15
MARKET_FAST_PRICE: Final = 2 * MARKET_PRICE
"""The market's fast lane costs twice the standard lane, as `fastLanePercent` 200 prices it over HTTP."""
MARKET_WINDOW_S: Final = 3_600

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def build_head_circuits(
    cache: Path, head: Path, sizes: Iterable[int] = HEAD_SIZES, *, progress: Progress = _quiet
) -> dict[int, Any]:
    """The circuit of the trained curation head in folder `head` for each batch size (built once,
    then cached: the cache key covers the exported weights)."""
    from zkml.curation_head import CurationHead, export_onnx, load_weights
    from zkml.pipeline import Circuit

    try:
        model = CurationHead.from_state(load_weights(head))
    except ValueError as err:
        raise HeadError(f"{head}: {err}") from None
    cache.mkdir(parents=True, exist_ok=True)
    tag = hashlib.sha256(repr(sorted((k, v.tolist()) for k, v in model.state_dict().items())).encode()).hexdigest()
    circuits = {}

    def tell(size: int) -> Progress:
        return lambda message: progress(f"circuit x{size}: {message}")

    for size in sizes:
        onnx = export_onnx(model, cache / f".head-{tag[:16]}-x{size}.onnx", batch=size)
        circuits[size] = Circuit.build(
            onnx,
            cache,
            batch=size,
            embed_dim=model.shape.embed_dim,
            progress=tell(size),
        )
    return circuits


async def check_head_bands(client: ChainClient, head_models: Mapping[int, tuple[Any, int]], head: HeadModel) -> None:
    """HeadError unless every model version the prover attests under has the bands of `head` (the
    head the curator decides with) bound on chain: otherwise the curator would accept what the
    chain records as review or reject."""
    for size, (_, model_id) in sorted(head_models.items()):
        accept_at, review_at = await client.call("ModelRegistry", "bandsOf", model_id)
        if (int(accept_at), int(review_at)) != (head.accept_fixed, head.review_fixed):
            raise HeadError(
                f"model version {model_id} (circuit x{size}) has the bands accept >= {int(accept_at)}, reject < "
                f"{int(review_at)} on chain, but the curation head at {head.folder} decides with accept >= "
                f"{head.accept_fixed}, reject < {head.review_fixed}: pass the head that version was bound with"
            )


@dataclass(frozen=True)
class LocalSetup:
    addresses: dict[str, str]
    t2i_model_id: int
    head_models: dict[int, tuple[Any, int]]
    """Batch size -> (circuit, model id)."""
    data_tree: DataTree
    deploy_gas: int
    deployed: tuple[Deployed, ...] = ()
    """The core contracts as `deploy_core` deployed them (what a deployment record lists)."""
    agents: AgentDirectory | None = None
    """The operator's ERC-8004 agents, when the chain was prepared with a public URL."""
    upscaler_model_id: int = 0
    """The shipped upscaler's model version (0: no upscaler was registered)."""


def _register(core_models: Any, developer: Any, model_input: dict[str, Any]) -> int:
    core_models.registerModel(model_input, sender=developer)
    return int(core_models.modelIdOf(developer.address, model_input["weightsDigest"]))


def _register_folder(
    core_models: Any, developer: Any, folder: Path, store: BlockStore, *, data_root: bytes, data_bps: int
) -> int:
    """Registers the model saved in `folder` (its weights digest, its model card stored as the
    metadata) with the developer's share and `data_bps` to the originators under `data_root`."""
    card = store.add_bytes((folder / "README.md").read_bytes())
    return _register(
        core_models,
        developer,
        {
            "weightsDigest": weights_digest(folder),
            "paramsCommitment": ZERO32,
            "dataRoot": data_root,
            "predecessor": 0,
            "developerBps": T2I_DEVELOPER_BPS,
            "dataBps": data_bps,
            "metadataURI": f"ipfs://{card}",
        },
    )


def prepare_chain(
    project: Any,
    chain: Any,
    *,
    operator: Any,
    developer: Any,
    originators: Sequence[tuple[str, int]],
    t2i_folder: Path,
    circuits: Mapping[int, Any],
    bands: tuple[int, int],
    store: BlockStore,
    solc: Path,
    progress: Progress = _quiet,
    dev_holders: Sequence[str] = (),
    public_url: str | None = None,
    upscaler_folder: Path | None = None,
) -> LocalSetup:
    """Deploys and registers everything on a development chain (see the module docstring).
    `bands`: the curation head's (accept_at, review_at) in its fixed point, bound to each of its
    model versions with the verifier. `dev_holders`: accounts minted the development dollar
    (`agents.deploy.deployment.deploy_dev_token`, for x402 `exact` payments). `public_url`: the
    API's base URL; with it, ERC-8004 registries and the zkML validator are deployed and the
    operator's agents registered (`agents.deploy.erc8004`), their wallet the operator's key.
    `upscaler_folder`: the upscaler, registered (last, so the other versions keep their numbers)
    where the folder exists."""
    from zkml.evm import deploy_verifier

    deployed = deploy_core(project, operator, chain)
    addresses = {d.name: d.address for d in deployed}
    market = operator.deploy(
        project.GenerationMarket,
        addresses["ProvenanceRegistry"],
        operator.address,
        MARKET_PRICE,
        MARKET_FAST_PRICE,
        MARKET_WINDOW_S,
        operator.address,
    )
    addresses[MARKET] = str(market.address)
    licenses = project.LicenseManager.at(addresses["LicenseManager"])
    token = deploy_dev_token(project, operator, licenses, dev_holders)
    addresses[DEV_TOKEN] = str(token.address)
    placed = install_permit2(project, chain.provider, operator, project_root(), solc)
    progress(f"deployed {', '.join(addresses)}; {', '.join(placed)} at their canonical addresses")
    models = project.ModelRegistry.at(addresses["ModelRegistry"])
    tree = DataTree(list(originators))
    t2i_id = _register_folder(models, developer, t2i_folder, store, data_root=tree.root, data_bps=T2I_DATA_BPS)
    progress(f"registered the text-to-image model as version {t2i_id}")
    head_models: dict[int, tuple[Any, int]] = {}
    for size, circuit in sorted(circuits.items()):
        compiled = circuit.verifier(solc, progress=lambda m, s=size: progress(f"verifier x{s}: {m}"))
        verifier = deploy_verifier(developer, compiled)
        onnx = circuit.artifacts.onnx.read_bytes()
        onnx_cid = store.add_bytes(onnx)
        model_id = _register(
            models,
            developer,
            {
                "weightsDigest": hashlib.sha256(onnx).digest(),
                "paramsCommitment": compiled.vk_digest,
                "dataRoot": ZERO32,
                "predecessor": 0,
                "developerBps": 0,
                "dataBps": 0,
                "metadataURI": f"ipfs://{onnx_cid}",
            },
        )
        models.bindVerifier(model_id, verifier.address, compiled.vk_digest, *bands, sender=developer)
        head_models[size] = (circuit, model_id)
        progress(
            f"curation head x{size}: model version {model_id}, verifier {verifier.address}, "
            f"bands accept >= {bands[0]}, reject < {bands[1]}"
        )
    upscaler_id = 0
    if upscaler_folder is not None and (upscaler_folder / "model_index.json").is_file():
        upscaler_id = _register_folder(models, developer, upscaler_folder, store, data_root=ZERO32, data_bps=0)
        progress(f"registered the upscaler as version {upscaler_id}")
    directory = None
    if public_url is not None:
        registries = deploy_agent_registries(
            project, operator, chain.chain_id, addresses["ProvenanceRegistry"], f"{public_url}/v1/validations/"
        )
        addresses.update(registries.addresses())
        keys = dict.fromkeys(ROLES, operator.private_key)
        ids = register_agents(project, operator, registries, public_url, keys, chain.pending_timestamp)
        directory = AgentDirectory(registries, ids, str(operator.address), public_url)
        progress(f"ERC-8004 agents {', '.join(f'{r} #{i}' for r, i in ids.items())} in {registries.identity}")
    return LocalSetup(
        addresses,
        t2i_id,
        head_models,
        tree,
        sum(d.gas_used for d in deployed),
        tuple(deployed),
        directory,
        upscaler_id,
    )


@dataclass
class Models:
    """The generator (worker processes) and the curator, as loaded by `load_models`: whoever
    loads them closes them, so one set can serve several `Parts` in turn (the tests do)."""

    generator: Any = None
    curator: Any = None
    upscaler: Any = None
    """The upscaler (`agents.models.upscaler.Upscaler`), for the upscaler daemon."""
    policy: Any = None
    """The curation policy the curator applies and the generator screens prompts with."""

    def screen(self) -> Any:
        """How the generator moderates prompts before generating: with CLIP where the curator is
        loaded (blocked terms and concepts), else with the policy's blocked terms alone."""
        from agents.models.curator import CurationPolicy, term_screen

        if self.curator is not None:
            return self.curator.screen
        return term_screen(self.policy or CurationPolicy())

    def close(self) -> None:
        for part in (self.generator, self.curator, self.upscaler):
            if part is not None:
                part.close()


async def load_models(
    root: Path,
    names: Iterable[str] = DEFAULT_DAEMONS,
    *,
    t2i: str | None = None,
    clip: str | None = None,
    agent_threads: int | None = 1,
    policy: Path | None = None,
    head: Path | None = None,
    upscaler: Path | None = None,
) -> Models:
    """The models the daemons in `names` need: the text-to-image pipeline for the generator
    (default: the shipped `models/tiny-t2i`), CLIP and the curation head that decides for the
    curator (`models/tiny-clip`, `head` default `models/curation-head`), and the curation policy
    (`policy`, default the shipped `models/curation-policy.json`). A
    generator whose policy blocks concepts loads CLIP too, to screen prompts before it spends
    compute on them.

    `agent_threads`: torch's intra-op threads and numpy's BLAS threads in this process (both are
    process-wide), where the curator's model runs beside the event loop and the embedded chain.
    One by default: its batches are small, and more threads here crowd out the generator's
    worker processes (one per core, on one thread each) and the other stages for no gain. None
    leaves both settings alone."""
    from agents.models.curator import CurationPolicy, Curator
    from agents.models.generator import ProcessGenerator
    from agents.runtime.processes import limit_blas_threads

    names = set(names)
    if agent_threads is not None:
        limit_blas_threads(agent_threads)
    models = Models(policy=CurationPolicy.from_json(policy or root / DEFAULT_POLICY))
    if "upscaler" in names:
        from agents.models.upscaler import Upscaler

        models.upscaler = await asyncio.to_thread(Upscaler.load, upscaler or root / DEFAULT_UPSCALER)
    if "generator" in names:  # in a worker process: the event loop and the EVM never stall it (GIL)
        models.generator = await ProcessGenerator.load(t2i or str(root / "models" / "tiny-t2i"))
    if "curator" in names or ("generator" in names and models.policy.blocked):
        if agent_threads is not None:
            import torch

            torch.set_num_threads(agent_threads)
        try:
            decider = None
            if "curator" in names:
                decider = await asyncio.to_thread(HeadModel.load, head or root / HEAD_FOLDER)
            models.curator = await Curator.load(
                clip or f"local-dir:{root / 'models' / 'tiny-clip'}", models.policy, head=decider
            )
        except BaseException:
            models.close()
            raise
    return models


@dataclass
class Parts:
    """What the stages are built from. `close()` closes what `open_parts` opened: the journal,
    the prover's worker, and the models unless they were handed in."""

    journal: Journal
    client: ChainClient | None
    store: BlockStore
    identity: DevIdentity | None
    generator: Any
    curator: Any
    screen: Any
    """How the generator moderates prompts first (`Models.screen`)."""
    model: ModelInfo
    t2i_model_id: int
    head_models: Mapping[int, tuple[Any, int]]
    input_scale: int
    prover_executor: Executor | None = None
    index_path: Path | None = None
    metrics: Metrics | None = None
    service: str | None = None
    """The service whose vouchers the API accepts (payers deposit escrow with it). None: the
    chain key's address. (The settlement daemon settles the vouchers of its key's address: only
    a service may settle its vouchers.)"""
    owned_models: Models | None = None
    request_pricing: RequestPricing | None = None
    """What generation requests paid with x402 `upto` cost (the settlement daemon charges them by
    it); None: the shipped pricing (`agents.api.upto.DEFAULT_PRICING`)."""
    upscaler: Any = None
    """The upscaler (`agents.models.upscaler.Upscaler`), where the upscaler daemon runs."""
    upscaler_model_id: int = 0
    """The upscaler's registered model version: upscales register under it."""
    validation: ValidationTarget | None = None
    """The prover's ERC-8004 agent: with it (and the registries in `addresses`), each proven
    chunk is put to the zkML validator (`agents.daemons.validate`)."""

    def service_address(self) -> str:
        """The API's service: `service`, else the chain key's address."""
        return self.service if self.service is not None else self.chain().address

    def chain(self) -> ChainClient:
        if self.client is None:
            raise ValueError("this daemon needs a chain connection")
        return self.client

    def signer(self) -> DevIdentity:
        if self.identity is None:
            raise ValueError("the publisher needs a signing identity")
        return self.identity

    def close(self) -> None:
        if self.owned_models is not None:
            self.owned_models.close()
        if self.prover_executor is not None:
            self.prover_executor.shutdown(wait=True)
        self.store.close()
        self.journal.close()


def store_location(state: Path, store: str | Path | None) -> str | Path:
    """Where the content store lives: `store` (a folder, or a postgresql:// URL that every host
    reaches), else the state folder's own `store` folder."""
    return store if store is not None else state / "store"


def journal_location(state: Path, journal: str | Path | None) -> str | Path:
    """Where the journal lives: `journal` (a path, or a postgresql:// URL that workers on many
    hosts share), else the state folder's own SQLite file."""
    return journal if journal is not None else state / "journal.db"


async def open_parts(
    root: Path,
    state: Path,
    *,
    web3: Any,
    key: str,
    addresses: Mapping[str, str],
    t2i_model_id: int,
    head_models: Mapping[int, tuple[Any, int]],
    names: Iterable[str] = DEFAULT_DAEMONS,
    t2i: str | None = None,
    clip: str | None = None,
    sender_poll: float = 0.1,
    metrics: Metrics | None = None,
    agent_threads: int | None = 1,
    service: str | None = None,
    models: Models | None = None,
    policy: Path | None = None,
    head: Path | None = None,
    journal: str | Path | None = None,
    store: str | Path | None = None,
    validation: ValidationTarget | None = None,
    request_pricing: RequestPricing | None = None,
    upscaler: Path | None = None,
    upscaler_model_id: int = 0,
) -> Parts:
    """Opens what the daemons in `names` need under `state`: the journal (`journal`: a path or a
    postgresql:// URL; default `state`/journal.db), the content store (`store`: a folder or a
    postgresql:// URL; default `state`/store),
    the chain client, the curator's near-duplicate index (as the curator last saved it), and
    the models (`load_models` with `t2i`, `clip` and `agent_threads`), unless `models` are
    handed in loaded: then they stay the caller's. `service`: see `Parts.service`;
    `validation`: see `Parts.validation`; `request_pricing`: see `Parts.request_pricing`."""
    from eth_account import Account
    from eth_utils.address import to_checksum_address

    from agents.models.curator import EmbeddingIndex
    from agents.runtime.chain import CORE, load_abis
    from zkml.settings import PINNED

    names = set(names)
    await asyncio.to_thread(state.mkdir, parents=True, exist_ok=True)
    owned = None
    if models is None:
        models = owned = await load_models(
            root, names, t2i=t2i, clip=clip, agent_threads=agent_threads, policy=policy, head=head, upscaler=upscaler
        )
    opened = Journal(journal_location(state, journal), final=jobs.REGISTERED_OR_FINAL)
    blocks = open_store(store_location(state, store))
    try:
        await asyncio.to_thread(blocks.create)
    except BaseException:
        opened.close()
        blocks.close()
        raise
    abis = await asyncio.to_thread(load_abis, root, (*CORE, MARKET, DEV_TOKEN, *AGENT_CONTRACTS, UPTO_PROXY))
    abis[PERMIT2_ERRORS_NAME] = PERMIT2_ERRORS  # reverts of Permit2 itself, named (it has no address here)
    client = ChainClient(web3, Account.from_key(key), opened, addresses, abis, poll=sender_poll)
    generator = models.generator if "generator" in names else None
    curator = models.curator if "curator" in names else None
    index_path = state / "curator-index.npz"
    if curator is not None:  # this state's index: a restarted curator still knows what it accepted
        curator.index = await asyncio.to_thread(EmbeddingIndex.load, index_path, curator.index.dim)
    identity = None
    if "publisher" in names:
        identity = await asyncio.to_thread(DevIdentity.load_or_create, state / "identity")
    executor = None
    if "prover" in names:
        from concurrent.futures import ProcessPoolExecutor

        # proving is background work with no one waiting on it: its worker runs at a lower CPU
        # priority, so the generator's worker (which requests wait on) keeps the cores it needs
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=worker_context(PROVER_PRELOAD),
            initializer=ignore_interrupts,
            initargs=(PROVER_NICENESS,),
        )
    return Parts(
        journal=opened,
        client=client,
        store=blocks,
        identity=identity,
        generator=generator,
        curator=curator,
        screen=models.screen() if generator is not None else None,
        model=ModelInfo(_model_name(t2i), f"model version {t2i_model_id}"),
        t2i_model_id=t2i_model_id,
        head_models=head_models,
        input_scale=PINNED.input_scale,
        prover_executor=executor,
        index_path=index_path,
        metrics=metrics,
        service=to_checksum_address(service) if service is not None else None,
        owned_models=owned,
        validation=validation,
        request_pricing=request_pricing,
        upscaler=models.upscaler if "upscaler" in names else None,
        upscaler_model_id=upscaler_model_id,
    )


async def open_local(
    ape: Any,
    root: Path,
    state: Path,
    *,
    originators: Sequence[tuple[str, int]],
    head_sizes: Iterable[int] = HEAD_SIZES,
    head: Path | None = None,
    progress: Progress = _quiet,
    public_url: str | None = None,
    **parts_options: Any,
) -> tuple[LocalSetup, Parts]:
    """Everything on the development chain ape is connected to, as `proofmint up`, the demo and
    the benchmarks use it: the curation head's circuits (cached), the contracts deployed and the
    models registered by ape's first two test accounts (operator, model developer), and the
    agents' parts acting as the operator. `head`: the curation head's folder (default the shipped
    `models/curation-head`): the curator decides with it and the prover proves it. `public_url`:
    the API's base URL, for ERC-8004 agents (see `prepare_chain`); the prover then puts its proven
    chunks to the zkML validator. `parts_options` go to `open_parts`."""
    from agents.core.toolchain import solc_executable

    accounts = ape.accounts.test_accounts
    operator, developer = accounts[0], accounts[1]
    folder = head or root / HEAD_FOLDER
    decider = await asyncio.to_thread(HeadModel.load, folder)
    circuits = await asyncio.to_thread(
        build_head_circuits, root / ".cache" / "zkml-agents", folder, tuple(head_sizes), progress=progress
    )
    blocks = open_store(store_location(state, parts_options.get("store")))  # the setup's own: closed after
    try:
        await asyncio.to_thread(blocks.create)
        setup = await asyncio.to_thread(
            lambda: prepare_chain(
                ape.project,
                ape.chain,
                operator=operator,
                developer=developer,
                originators=originators,
                t2i_folder=root / "models" / "tiny-t2i",
                circuits=circuits,
                bands=(decider.accept_fixed, decider.review_fixed),
                store=blocks,
                solc=solc_executable(root),
                progress=progress,
                dev_holders=[str(a.address) for a in list(accounts)[:10]],
                public_url=public_url,
                upscaler_folder=root / DEFAULT_UPSCALER,
            )
        )
    finally:
        blocks.close()
    parts = await open_parts(
        root,
        state,
        web3=ape.chain.provider.web3,
        key=operator.private_key,
        addresses=setup.addresses,
        t2i_model_id=setup.t2i_model_id,
        head_models=setup.head_models,
        head=folder,
        upscaler_model_id=setup.upscaler_model_id,
        validation=(
            ValidationTarget(setup.agents.ids["prover"], setup.agents.public_url, int(ape.chain.chain_id))
            if setup.agents is not None
            else None
        ),
        **parts_options,
    )
    return setup, parts


#: The daemons whose stages send transactions: they run only in the process that leads the key.
SENDING_DAEMONS: Final = frozenset({"registrar", "prover", "settlement", "upscaler"})
#: The daemons of which one process runs at a time whatever its key: the registrar's batch
#: intents and the settlement's vouchers have one writer (agents.daemons.runner).
SINGLE_LEADER_DAEMONS: Final = frozenset({"registrar", "settlement"})

#: How much lower the prover's worker process runs than the agents (os.nice increment).
PROVER_NICENESS: Final = 10


@dataclass(frozen=True)
class BuildOptions:
    """How `build_agents` sizes the stages."""

    worker: str
    generate_batch: int
    micro_batch: int
    register_batch: int
    linger_s: float
    generate_linger_s: float
    register_in_flight: int = 4
    adaptive: AdaptiveSteps | None = None


StageFactory = Callable[[Parts, StageSpec, BuildOptions, dict[str, Any]], Stage]


def _model_name(t2i: str | None) -> str:
    """The generator's name as manifests publish it: a hub id as given, a local folder by its
    name only (never this machine's path)."""
    if t2i is None:
        return "proofmint tiny-t2i"
    local = t2i.startswith(("/", "~", ".", "local-dir:")) or Path(t2i).exists()
    return Path(t2i.removeprefix("local-dir:")).name if local else t2i


def _generator(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    return GenerateStage(
        parts.journal,
        parts.generator,
        parts.store,
        worker=f"{o.worker}/generator",
        model_id=parts.t2i_model_id,
        screen=parts.screen,
        adaptive=o.adaptive,
        batch=o.generate_batch,
        # the generator pads every micro-batch to its size (so results never depend on the
        # company a request keeps): wait a moment for a full one rather than pad
        min_batch=min(o.generate_batch, o.micro_batch),
        linger_s=o.generate_linger_s,
        # a micro-batch per worker process in flight (by default a claim is one micro-batch):
        # the next one is queued before the last one's results are journaled
        concurrency=parts.generator.workers if parts.generator is not None else 1,
        **common,
    )


def _curator(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    return CurateStage(
        parts.journal,
        parts.curator,
        parts.store,
        index_path=parts.index_path,
        worker=f"{o.worker}/curator",
        batch=64,
        **common,
    )


def _publisher(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    return PublishStage(
        parts.journal,
        parts.store,
        parts.signer(),
        parts.model,
        input_scale=parts.input_scale,
        worker=f"{o.worker}/publisher",
        batch=32,
        **common,
    )


def _registrar(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    # registerMany straight to `registered`, or commit a batch root (then the claimer claims)
    kind = RegisterStage if spec.outbox == jobs.REGISTERED else CommitStage
    client = parts.chain()
    return kind(
        parts.journal,
        client,
        model_id=parts.t2i_model_id,
        worker=f"{o.worker}/registrar",
        batch=o.register_batch,
        min_batch=o.register_batch,
        linger_s=o.linger_s,
        upstream=BEFORE_PUBLISHED,
        # registerMany batches in flight at once, one nonce each from the one sender: a single
        # batch waits out its block (0.4 s on a tracing anvil, 2 s on an OP-stack chain), which
        # caps a registrar at 64 assets a block. A commit's root is one transaction, so commits go
        # one at a time, and an in-process chain mines each transaction inside its send: nothing
        # to overlap there
        concurrency=o.register_in_flight if kind is RegisterStage and not is_in_process(client.web3) else 1,
        **common,
    )


def _claimer(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    return ClaimStage(
        parts.journal,
        parts.chain(),
        model_id=parts.t2i_model_id,
        worker=f"{o.worker}/claimer",
        batch=o.register_batch,
        **common,
    )


def _deliver(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    return DeliverStage(parts.journal, parts.chain(), worker=f"{o.worker}/deliver", batch=64, **common)


def _upscaler(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    if parts.upscaler is None or not parts.upscaler_model_id:
        raise ValueError("the upscaler daemon needs the upscaler loaded and its registered model version")
    return UpscaleStage(
        parts.journal,
        parts.upscaler,
        parts.store,
        parts.chain(),
        model_id=parts.upscaler_model_id,
        worker=f"{o.worker}/upscaler",
        batch=8,
        **common,
    )


#: How the prover gathers proven chunks into validation requests: one request per 64 assets of one
#: model version and verdict, or whatever waits after 5 s (and everything when it stops).
VALIDATION_GATHERING: Final = Gathering(min_assets=64, linger_s=5.0)


def _prover(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    validations = (
        Validations(parts.journal, parts.chain(), parts.validation, VALIDATION_GATHERING) if parts.validation else None
    )
    return ProveStage(
        parts.journal,
        parts.chain(),
        parts.head_models,
        executor=parts.prover_executor,
        validations=validations,
        worker=f"{o.worker}/prover",
        min_batch=max(parts.head_models),
        linger_s=o.linger_s,
        upstream=BEFORE_DELIVERED,
        max_attempts=3,
        **common,
    )


def _settlement(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    return SettleStage(
        parts.journal, parts.chain(), worker=f"{o.worker}/settlement", min_batch=32, linger_s=o.linger_s, **common
    )


def _sweeper(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    return SweepStage(
        parts.journal, parts.chain(), worker=f"{o.worker}/sweeper", batch=256, linger_s=o.linger_s, **common
    )


def _upto(parts: Parts, spec: StageSpec, o: BuildOptions, common: dict[str, Any]) -> Stage:
    pricing = parts.request_pricing or RequestPricing.from_json(project_root() / DEFAULT_PRICING)
    return UptoStage(parts.journal, parts.chain(), pricing, worker=f"{o.worker}/upto", batch=32, **common)


#: How each stage of `agents.daemons.pipeline.STAGES` is built, by stage name.
FACTORIES: Final[Mapping[str, StageFactory]] = {
    "generator": _generator,
    "curator": _curator,
    "publisher": _publisher,
    "registrar": _registrar,
    "claimer": _claimer,
    "deliver": _deliver,
    "prover": _prover,
    "settlement": _settlement,
    "sweeper": _sweeper,
    "upto": _upto,
    "upscaler": _upscaler,
}


def memory_queues() -> dict[str, WorkQueue]:
    """In-process wake-up queues, one per hand-off of the pipeline table."""
    return {stage: MemoryQueue(stage, capacity=4_096) for stage in HANDOFFS}


def redis_queues(redis: Any) -> dict[str, WorkQueue]:
    """Wake-up streams across processes, one per hand-off of the pipeline table."""
    from agents.runtime.queues import RedisStreamQueue

    return {stage: RedisStreamQueue(redis, stage) for stage in HANDOFFS}


def build_agents(
    parts: Parts,
    *,
    names: Iterable[str] = DEFAULT_DAEMONS,
    worker: str = "local",
    generate_batch: int | None = None,
    register_batch: int = 64,
    register_in_flight: int = 4,
    linger_s: float = 2.0,
    idle: float = 0.2,
    queues: Mapping[str, WorkQueue] | None = None,
    withdraw_every_s: float | None = 30.0,
    registration: str = MANY,
    market_confirmations: int = 2,
    generate_linger_s: float = 0.25,
    lease_s: float | None = None,
    lease_ttl_s: float | None = None,
    cost_records: bool = True,
    adaptive: AdaptiveSteps | None = None,
) -> Agents:
    """The stages of the daemons in `names` (`agents.daemons.pipeline.STAGES`), woken through
    `queues` (one per hand-off: `memory_queues()` in process, the default, or `redis_queues`).
    `cost_records=False`: the stages journal no cost records (the accounting's benchmark baseline).
    `adaptive`: the generator's adaptive production under load (None: requests served as asked).
    `register_in_flight`: how many `registerMany` batches the registrar has in flight at once."""
    names = list(names)
    specs = stages_of(names, registration)
    q: dict[str, WorkQueue] = {**memory_queues(), **dict(queues or {})}
    micro_batch = parts.generator.batch if parts.generator is not None else 8
    options = BuildOptions(
        worker=worker,
        generate_batch=generate_batch or micro_batch,
        micro_batch=micro_batch,
        register_batch=register_batch,
        register_in_flight=register_in_flight,
        linger_s=linger_s,
        generate_linger_s=generate_linger_s,
        adaptive=adaptive,
    )
    stages: list[Stage] = []
    for spec in specs:
        common: dict[str, Any] = {"idle": idle, "metrics": parts.metrics, "cost_records": cost_records}
        if lease_s is not None:  # how soon a dead worker's jobs are taken over (renewed while in hand)
            common["lease_s"] = lease_s
        if spec.inbox is not None:
            common["inbox"] = q[spec.inbox]
        if spec.outbox is not None:
            common["outbox"] = q[spec.outbox]
        stages.append(FACTORIES[spec.name](parts, spec, options, common))
    j = parts.journal
    watchers: list[MarketWatcher] = []
    if "generator" in names and parts.client is not None and MARKET in parts.client.contracts:
        confirmations = 0 if is_in_process(parts.client.web3) else market_confirmations
        watchers.append(MarketWatcher(j, parts.client, confirmations=confirmations))
    chain_daemons = SENDING_DAEMONS & set(names) or ({"generator"} if watchers else set())
    return Agents(
        j,
        stages,
        clients=[parts.chain()] if chain_daemons else [],
        chain_stages=frozenset(
            stage.name for spec, stage in zip(specs, stages, strict=True) if spec.daemon in SENDING_DAEMONS
        ),
        roles=tuple(sorted(SINGLE_LEADER_DAEMONS & set(names))),
        worker=worker,
        lease_ttl_s=lease_ttl_s if lease_ttl_s is not None else LEASE_TTL_S,
        withdraw_every_s=withdraw_every_s if "settlement" in names else None,
        metrics=parts.metrics,
        watchers=watchers,
    )
