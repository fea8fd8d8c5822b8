"""`proofmint agent NAME`, `proofmint up` and `proofmint request`.

- `proofmint agent NAME` runs one daemon against any RPC, with the contracts of a deployment
  record and a key from an environment variable (never from the command line). Several machines
  can run the same daemon: with `--redis`, stages wake each other through Redis Streams.
  `proofmint agent api` serves the HTTP API and the dApp over the same state (it sends nothing,
  so it needs no key); wallets are told `--public-rpc` (default: `--rpc`) as the chain's RPC.
  Having no key, it must be told its service (`--service` or `$PROOFMINT_SERVICE`): the address
  whose vouchers it accepts and with which payers deposit escrow. Only a service may settle its
  vouchers, so the settlement daemon runs with the service's key (given `--service`, it checks
  that its key is that address).
- `proofmint up` runs every daemon in one process on the embedded chain: it deploys, registers
  the shipped models and the curation head's circuits, then serves until Ctrl-C, with metrics.
  Its service is the operator's address, the key that settles.
- `proofmint request PROMPT` journals a generation request for the daemons sharing `--state`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from agents.app.options import journal_option, store_option
from agents.core.costs import DEFAULT_PRICES
from agents.core.errors import PermanentError
from agents.core.metering import DEFAULT_PRICING
from agents.core.toolchain import project_root
from agents.daemons.pipeline import DAEMONS, REGISTRATIONS
from agents.models.curator import DEFAULT_POLICY
from agents.models.head import HEAD_FOLDER
from agents.runtime.processes import quiet_libraries

if TYPE_CHECKING:
    from agents.core.requests import GenerationRequest

DEFAULT_STATE = Path(".cache/agents")
UP_STATES = Path(".cache/up")
"""Where `proofmint up` keeps the throwaway state of each run when --state is not given (under the
repository root)."""


def fresh_state(state: Path | None, throwaways: Path = UP_STATES) -> tuple[Path, bool]:
    """The state folder for `proofmint up` and whether it is a throwaway one of its own. `up` starts a new
    chain, so its state must start empty; it never deletes a folder it did not create in this
    run. Without --state: a new folder of its own under `.cache/up/` (removed when the run ends).
    With --state DIR: DIR if it is missing or empty; any other DIR (another run's journal, an
    agent's, the API's book of vouchers) is refused with `click.UsageError`."""
    if state is None:
        throwaways.mkdir(parents=True, exist_ok=True)
        import tempfile

        return Path(tempfile.mkdtemp(prefix="run-", dir=throwaways)), True
    if state.exists() and not state.is_dir():
        raise click.UsageError(f"--state {state} is a file, not a folder")
    if state.is_dir() and any(state.iterdir()):
        raise click.UsageError(
            f"--state {state} is not empty: `up` starts a new chain and never reuses or deletes another "
            "state (it may hold agents' journals or the API's vouchers); name an empty folder, or leave "
            "--state out for a throwaway one"
        )
    state.mkdir(parents=True, exist_ok=True)
    return state, False


def recorded_deployment(rpc: str) -> Path:
    """The deployment record of the node at `rpc`, where `ape run deploy --network RPC` and
    `proofmint up` write it; `click.UsageError` when there is none."""
    from agents.deploy.operator import Target, record_path

    path = record_path(project_root(), Target(choice=rpc, chain_id=0, live=False, ephemeral=False))
    if not path.is_file():
        raise click.UsageError(
            f"no deployment recorded for {rpc} ({path}): pass --deployment FILE, or run "
            f"`ape run deploy --network {rpc}` (or `proofmint up --rpc-port PORT`) first"
        )
    return path


def _service(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from eth_utils.address import is_address, to_checksum_address

    if value is None:
        return None
    if not is_address(value) or int(value, 16) == 0:
        raise click.BadParameter(f"{value!r} is not a non-zero address (0x and 40 hex digits)")
    return str(to_checksum_address(value))


def _heads(values: tuple[str, ...]) -> dict[int, int]:
    heads: dict[int, int] = {}
    for value in values:
        size, sep, model_id = value.partition("=")
        if not sep or not size.isdigit() or not model_id.isdigit() or int(size) < 1:
            raise click.BadParameter(f"{value!r}: expected BATCH=MODEL_ID, e.g. 4=3", param_hint="--head")
        heads[int(size)] = int(model_id)
    return heads


def stop_on_signals() -> asyncio.Event:
    """An event that SIGINT or SIGTERM sets: the one place where the long-running commands
    (`up`, `agent`) take signals. They then stop gracefully (the batches in hand finish)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # no signal handlers on this platform's loop
            loop.add_signal_handler(sig, stop.set)
    return stop


async def serve_agents(
    agents: Any, metrics: Any, port: int | None, host: str = "127.0.0.1", *, stop: asyncio.Event | None = None
) -> None:
    """Runs `agents` (with `/metrics` on `port`, if given) until SIGINT or SIGTERM, then stops
    them gracefully; raises the first failure of a stage. What `up` and `agent` run. `stop`: an
    event from `stop_on_signals()` the caller set up earlier (a signal during its own start-up
    then stops the agents as soon as they start, instead of killing the process)."""
    from agents.runtime.telemetry import serve_metrics

    runner = await serve_metrics(metrics, host=host, port=port) if port else None
    stop = stop or stop_on_signals()
    await agents.start()
    shown = ""
    try:
        while not stop.is_set():
            failures = agents.failed()
            if failures:
                raise failures[0]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 5.0)
            counts = await agents.journal.call(agents.journal.counts)
            line = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "none"
            if line != shown:
                click.echo(f"jobs: {line}", err=True)
                shown = line
    finally:
        click.echo("stopping: finishing the batches in hand", err=True)
        await stopped(agents.stop())
        if runner is not None:
            await runner.cleanup()


async def stopped(stopping: Awaitable[None], every_s: float = 10.0) -> None:
    """Awaits `stopping` (the agents finishing the batches in hand), saying every `every_s`
    seconds what it still waits on: each unfinished task of the process and where it is
    suspended, so a drain that does not end names its cause."""
    task = asyncio.ensure_future(stopping)
    waited = 0.0
    while True:
        done, _ = await asyncio.wait({task}, timeout=every_s)
        if done:
            task.result()
            return
        waited += every_s
        others = [t for t in asyncio.all_tasks() if t is not task and t is not asyncio.current_task() and not t.done()]
        lines = [f"still stopping after {waited:.0f} s; {len(others)} task(s) not finished:"]
        for other in sorted(others, key=lambda t: t.get_name()):
            frames = other.get_stack()
            where = " <- ".join(
                f"{f.f_code.co_name} ({Path(f.f_code.co_filename).name}:{f.f_lineno})" for f in frames[::-1][:4]
            )
            lines.append(f"  {other.get_name()}: {where or 'not started'}")
        click.echo("\n".join(lines), err=True)


API = "api"
REGISTRATION_HELP = (
    "registrar: 'many' registers each batch in one registerMany (the default; on chains whose mempool is public "
    "a front-runner can see the digests first); 'commit-claim' commits the batch's leaves (which hide them), then "
    "claims each member, so a squatter who registers a digest after the commitment is taken over by the claim"
)
#: Chains `proofmint up` runs on: ape's embedded py-evm chain, or anvil started by ape-foundry.
UP_NETWORKS = ("ethereum:local:test", "ethereum:local:foundry")

registration_option = click.option(
    "--registration",
    type=click.Choice(REGISTRATIONS),
    default=REGISTRATIONS[0],
    show_default=True,
    help=REGISTRATION_HELP,
)
"""`--registration` of the commands that run a registrar (`agent registrar`, `up`)."""


def _adaptive(ctx: click.Context, param: click.Parameter, value: str | None) -> object:
    """`--adaptive AFTER_S[:MIN_STEPS[:FACTOR]]` as the generator's policy (None: off)."""
    from agents.daemons.generate import AdaptiveSteps

    if value is None:
        return None
    parts = value.split(":")
    try:
        if not 1 <= len(parts) <= 3:
            raise ValueError("one to three values")
        after = float(parts[0])
        min_steps = int(parts[1]) if len(parts) > 1 else 8
        factor = float(parts[2]) if len(parts) > 2 else 0.5
        return AdaptiveSteps(after, min_steps, factor)
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r}: AFTER_S[:MIN_STEPS[:FACTOR]], e.g. 20 or 20:8:0.5 ({exc})", param_hint="--adaptive"
        ) from None


adaptive_option = click.option(
    "--adaptive",
    default=None,
    callback=_adaptive,
    metavar="AFTER_S[:MIN_STEPS[:FACTOR]]",
    help="Adaptive production under load: a standard-lane request that waited more than AFTER_S seconds is "
    "served with FACTOR (default 0.5) of its steps, never fewer than MIN_STEPS (default 8); the fast lane keeps "
    "its settings, and each asset's lineage names the steps it got and why. Default: off (always as asked)",
)
"""`--adaptive` of the commands that run the generator (`agent generator`, `up`)."""


def _checked(default: Path | None, load: Callable[[Path], object], errors: type[Exception]) -> Callable[..., Any]:
    """A click callback: the path given (else the project's `default`; None: no file), loaded and
    checked now, so a bad one is one line before any setup."""

    def callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
        if value is None and default is None:
            return None
        path = value.absolute() if value is not None else project_root() / default  # type: ignore[operator]
        try:
            load(path)
        except errors as exc:
            raise click.BadParameter(str(exc)) from None
        return path

    return callback


def _load_policy(path: Path) -> object:
    from agents.models.curator import CurationPolicy

    return CurationPolicy.from_json(path)


def _load_head(path: Path) -> object:
    from agents.models.head import HeadModel

    return HeadModel.load(path)


policy_option = click.option(
    "--policy",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_checked(DEFAULT_POLICY, _load_policy, PermanentError),
    help="Curation policy JSON: thresholds, blocked terms (prompts refused before any image is made) and "
    "blocked concepts (zero-shot CLIP, prompt and image). Default: the shipped models/curation-policy.json",
)
"""`--policy` of the commands that run the generator or the curator (`agent`, `up`)."""

curation_head_option = click.option(
    "--curation-head",
    "curation_head",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    callback=_checked(HEAD_FOLDER, _load_head, PermanentError),
    help="The trained curation head folder (make train-head writes one): the curator decides with its score and "
    "bands, the prover proves it. It must be trained for the --clip model. Default: the shipped models/curation-head",
)
"""`--curation-head` of the commands that run the curator or the prover (`agent`, `up`)."""


def _reviewers(ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> frozenset[str]:
    return frozenset(str(_service(ctx, param, value)) for value in values)


reviewer_option = click.option(
    "--reviewer",
    "reviewers",
    multiple=True,
    callback=_reviewers,
    help="An address whose EIP-712 signed decisions settle assets in human review (repeat for more)",
)
"""`--reviewer` of the commands that serve the API (`agent api`, `up`)."""


def _load_quotas(path: Path) -> object:
    from agents.core.quotas import Quotas

    return Quotas.from_json(path)


def _load_pricing(path: Path) -> object:
    from agents.core.metering import RequestPricing

    return RequestPricing.from_json(path)


request_pricing_option = click.option(
    "--request-pricing",
    "request_pricing",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_checked(DEFAULT_PRICING, _load_pricing, PermanentError),
    help="What generation requests paid with x402 upto cost (base fee, per denoising step and megapixel, per "
    "million gas of the registration batch's share): the API offers it, the settlement daemon charges by it. "
    "Default: the shipped models/request-pricing.json",
)
"""`--request-pricing` of the commands that take or charge paid generation requests (`agent`, `up`)."""


def _load_prices(path: Path) -> object:
    from agents.core.costs import CostPrices

    return CostPrices.from_json(path)


cost_prices_option = click.option(
    "--cost-prices",
    "cost_prices",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_checked(DEFAULT_PRICES, _load_prices, PermanentError),
    help="What compute, gas and storage cost the operator (JSON: US dollars per CPU second, GPU second, ether "
    "and gigabyte stored), for GET /v1/costs and proofmint costs. Default: the shipped models/cost-prices.json",
)
"""`--cost-prices` of the commands that report costs (`agent api`, `up`, `costs`)."""


@click.command("agent")
@click.argument("name", type=click.Choice((*DAEMONS, API)))
@click.option("--rpc", default="http://127.0.0.1:8545", show_default=True, help="JSON-RPC endpoint")
@click.option(
    "--deployment",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Deployment record (default: the one `ape run deploy --network RPC` or `proofmint up` wrote for --rpc)",
)
@click.option("--key-env", default="PROOFMINT_AGENT_KEY", show_default=True, help="Env var holding the agent's key")
@click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True)
@click.option(
    "--model-id",
    type=click.IntRange(min=1),
    help="Model version of the generator (registrar, publisher), or of the upscaler (upscaler)",
)
@click.option("--head", "heads", multiple=True, help="Prover: BATCH=MODEL_ID for each curation-head circuit")
@click.option("--t2i", default=None, help="Text-to-image model folder (default: the shipped one)")
@click.option("--clip", default=None, help="open_clip model (default: local-dir:models/tiny-clip)")
@click.option("--redis", "redis_url", default=None, help="redis://host:port: wake-ups across processes")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None, help="Serve /metrics and /healthz")
@click.option(
    "--metrics-host",
    default="127.0.0.1",
    show_default=True,
    help="The address /metrics and /healthz listen on (0.0.0.0: reachable by Prometheus, probes, `proofmint scale`)",
)
@click.option("--worker", default=None, help="Worker id (default: host/pid)")
@click.option("--api-host", default="127.0.0.1", show_default=True, help="api: the address to listen on")
@click.option("--api-port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="api: the port")
@click.option("--public-rpc", default=None, help="api: the chain's RPC as wallets reach it (default: --rpc)")
@click.option(
    "--data-tree",
    "data_trees",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="api: a model's originators' tree (`register_model` writes <csv>.tree.json), for data-share claims",
)
@click.option(
    "--service",
    envvar="PROOFMINT_SERVICE",
    callback=_service,
    default=None,
    help="api (required): the service address. The API accepts only vouchers naming it and counts only payers' "
    "escrow with it (payers deposit with this address). Only the service may settle its vouchers: the "
    "settlement daemon runs with its key, and checks it against --service when given. Env: PROOFMINT_SERVICE",
)
@click.option(
    "--erc8004-agent",
    "erc8004_agent",
    type=click.IntRange(min=0),
    default=None,
    help="prover: its ERC-8004 agent id (owned or operated by its key): each proven chunk is then put to the "
    "deployment's ZkmlValidator in its ValidationRegistry (both must be in the deployment record)",
)
@click.option(
    "--public-url",
    default=None,
    help="prover with --erc8004-agent: the API's base URL, whose /v1/validations/ serves the validation records",
)
@registration_option
@adaptive_option
@policy_option
@curation_head_option
@reviewer_option
@request_pricing_option
@cost_prices_option
@journal_option
@store_option
def agent_command(
    name: str,
    rpc: str,
    deployment: Path | None,
    key_env: str,
    state: Path,
    model_id: int | None,
    heads: tuple[str, ...],
    t2i: str | None,
    clip: str | None,
    redis_url: str | None,
    metrics_port: int | None,
    metrics_host: str,
    worker: str | None,
    api_host: str,
    api_port: int,
    public_rpc: str | None,
    data_trees: tuple[Path, ...],
    service: str | None,
    erc8004_agent: int | None,
    public_url: str | None,
    registration: str,
    adaptive: Any,
    policy: Path,
    curation_head: Path,
    reviewers: frozenset[str],
    request_pricing: Path,
    cost_prices: Path,
    journal: str | Path | None,
    store: str | Path | None,
) -> None:
    """Run one daemon (generator, curator, publisher, registrar, prover or settlement), or the
    HTTP API with the dApp (api).

    Any number of each may run, on any hosts, when they share a PostgreSQL journal (--journal
    postgresql://...), a content store every host reaches (--store postgresql://...), Redis
    (--redis) for wake-ups, and the chain. Of the processes that run a chain-writing daemon
    (registrar, prover, settlement) with one key, one sends and the others stand by to take over;
    one registrar and one settlement daemon send at a time whatever their keys; provers with keys
    of their own prove side by side."""
    deployment = deployment or recorded_deployment(rpc)
    if name == API:
        if service is None:
            raise click.UsageError(
                "the api needs --service ADDRESS (or $PROOFMINT_SERVICE): the service whose vouchers it accepts "
                "and with which payers deposit escrow, usually the address of the settlement daemon's key"
            )
        asyncio.run(
            _run_api(
                rpc,
                deployment,
                state,
                api_host,
                api_port,
                public_rpc or rpc,
                data_trees,
                service,
                reviewers,
                journal,
                store,
                cost_prices,
            )
        )
        return
    key = os.environ.get(key_env)
    if not key:
        raise PermanentError(f"set {key_env} to the agent's private key (0x + 64 hex)")
    if name == "settlement" and service is not None:
        from eth_account import Account

        own = str(Account.from_key(key).address)
        if own != service:
            raise click.UsageError(
                f"only the service may settle its vouchers: --service is {service} but {key_env} is the key "
                f"of {own}; run the settlement daemon with the service's key"
            )
    head_ids = _heads(heads)
    if name in ("registrar", "publisher") and model_id is None:
        raise click.UsageError(f"the {name} needs --model-id (the generating model's version)")
    if name == "upscaler" and model_id is None:
        raise click.UsageError(
            "the upscaler needs --model-id (the upscaler's registered version, under which it registers)"
        )
    if name == "prover" and 1 not in head_ids:
        raise click.UsageError("the prover needs --head 1=MODEL_ID (and larger batches as BATCH=MODEL_ID)")
    if erc8004_agent is not None and (name != "prover" or not public_url):
        raise click.UsageError("--erc8004-agent is the prover's, with --public-url (the API that serves the records)")
    asyncio.run(
        _run_agent(
            name,
            rpc,
            deployment,
            key,
            state,
            model_id or 0,
            head_ids,
            t2i,
            clip,
            redis_url,
            metrics_port,
            metrics_host,
            worker,
            service,
            registration,
            policy,
            curation_head,
            journal,
            store,
            (erc8004_agent, public_url or "") if erc8004_agent is not None else None,
            request_pricing,
            adaptive,
        )
    )


async def _run_api(
    rpc: str,
    deployment: Path,
    state: Path,
    host: str,
    port: int,
    public_rpc: str,
    tree_files: tuple[Path, ...],
    service: str,
    reviewers: frozenset[str],
    journal: str | Path | None,
    store: str | Path | None,
    cost_prices: Path,
) -> None:
    from eth_account import Account
    from web3 import HTTPProvider, Web3

    from agents.api.accounts import load_tree_file
    from agents.api.serve import api_app, serve
    from agents.app.wiring import open_parts
    from agents.core.costs import CostPrices
    from agents.runtime.chain import load_addresses
    from agents.runtime.telemetry import Metrics, json_logging

    json_logging()
    trees = {}
    for path in tree_files:
        try:
            model_id, tree = await asyncio.to_thread(load_tree_file, path)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--data-tree") from None
        trees[model_id] = tree
    web3 = Web3(HTTPProvider(rpc, exception_retry_configuration=None))
    addresses = await asyncio.to_thread(load_addresses, deployment)
    metrics = Metrics()
    # the API only reads the chain: its client gets a throwaway key that never signs anything
    parts = await open_parts(
        project_root(),
        state,
        web3=web3,
        key=Account.create().key.hex(),
        addresses=addresses,
        t2i_model_id=0,
        head_models={},
        names=[API],
        metrics=metrics,
        service=service,
        journal=journal,
        store=store,
    )
    # a throwaway key pays no gas: x402 `exact` (settled by the API's own transaction) is not offered here
    app = api_app(parts, state / "api", data_trees=trees, rpc_url=public_rpc, reviewers=reviewers, settles_exact=False,
                  cost_prices=CostPrices.from_json(cost_prices))  # fmt: skip
    runner = await serve(app, host=host, port=port)
    click.echo(f"API http://{host}:{port}/openapi.json, dApp http://{host}:{port}/app/ (Ctrl-C stops)", err=True)
    click.echo(f"service {service}: vouchers must name it; payers deposit escrow with it", err=True)
    try:
        await stop_on_signals().wait()
    finally:
        await runner.cleanup()
        parts.close()


async def _run_agent(
    name: str,
    rpc: str,
    deployment: Path,
    key: str,
    state: Path,
    model_id: int,
    head_ids: dict[int, int],
    t2i: str | None,
    clip: str | None,
    redis_url: str | None,
    metrics_port: int | None,
    metrics_host: str,
    worker: str | None,
    service: str | None,
    registration: str,
    policy: Path,
    curation_head: Path,
    journal: str | Path | None,
    store: str | Path | None,
    validation_agent: tuple[int, str] | None = None,
    request_pricing: Path | None = None,
    adaptive: Any = None,
) -> None:
    from web3 import HTTPProvider, Web3

    from agents.app.wiring import build_agents, build_head_circuits, check_head_bands, open_parts, redis_queues
    from agents.core.metering import RequestPricing
    from agents.daemons.validate import ValidationTarget
    from agents.deploy.erc8004 import VALIDATION, VALIDATOR
    from agents.models.head import HeadModel
    from agents.runtime.chain import load_addresses
    from agents.runtime.telemetry import Metrics, json_logging

    json_logging()
    root = project_root()
    web3 = Web3(HTTPProvider(rpc, exception_retry_configuration=None))
    addresses = await asyncio.to_thread(load_addresses, deployment)
    head_models: dict[int, tuple[Any, int]] = {}
    if head_ids:
        circuits = await asyncio.to_thread(
            build_head_circuits, root / ".cache" / "zkml-agents", curation_head, sorted(head_ids)
        )
        head_models = {size: (circuits[size], head_ids[size]) for size in head_ids}
    metrics = Metrics()
    validation = None
    if validation_agent is not None:
        missing = [n for n in (VALIDATION, VALIDATOR) if n not in addresses]
        if missing:
            raise click.UsageError(f"{deployment} has no {' or '.join(missing)}: --erc8004-agent needs both")
        chain_id = int(await asyncio.to_thread(lambda: web3.eth.chain_id))
        validation = ValidationTarget(validation_agent[0], validation_agent[1], chain_id)
    parts = await open_parts(
        root,
        state,
        web3=web3,
        key=key,
        addresses=addresses,
        t2i_model_id=model_id,
        head_models=head_models,
        names=[name],
        upscaler_model_id=model_id if name == "upscaler" else 0,
        t2i=t2i,
        clip=clip,
        metrics=metrics,
        service=service,
        policy=policy,
        head=curation_head,
        journal=journal,
        store=store,
        validation=validation,
        request_pricing=RequestPricing.from_json(request_pricing) if request_pricing is not None else None,
    )
    if head_models:
        try:
            await check_head_bands(parts.chain(), head_models, await asyncio.to_thread(HeadModel.load, curation_head))
        except BaseException:
            parts.close()
            raise
    queues: dict[str, Any] = {}
    redis = None
    if redis_url:
        from redis.asyncio import Redis

        redis = Redis.from_url(redis_url)
        queues = redis_queues(redis)
    agents = build_agents(
        parts,
        names=[name],
        worker=worker or f"{socket.gethostname()}/{os.getpid()}",
        queues=queues,
        registration=registration,
        adaptive=adaptive,
    )
    try:
        await serve_agents(agents, metrics, metrics_port, metrics_host)
    finally:
        parts.close()
        if redis is not None:
            await redis.aclose()


@click.command("up")
@click.option(
    "--state",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="An empty or new folder for this run's journal and store (default: a throwaway folder under .cache/up/)",
)
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=9464, show_default=True)
@click.option("--prompts", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="One prompt per line")
@click.option(
    "--api-port", type=click.IntRange(0, 65535), default=8080, show_default=True, help="The HTTP API; 0: no API"
)
@click.option(
    "--network",
    type=click.Choice(UP_NETWORKS),
    default=None,
    help=f"The embedded chain ({UP_NETWORKS[0]}, the default), or an anvil node of its own that the ape "
    f"scripts, `proofmint agent` and browser wallets can reach ({UP_NETWORKS[1]}, the default with --rpc-port)",
)
@click.option(
    "--rpc-port",
    type=click.IntRange(1, 65535),
    default=None,
    help=f"The port of its anvil node (implies --network {UP_NETWORKS[1]}; default 8545 there)",
)
@click.option(
    "--quotas",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    callback=_checked(None, _load_quotas, PermanentError),
    help="What each requester may use per period (JSON: requests, compute seconds, spend; a default and per "
    "requester; models/quotas.example.json shows the shape): POST /v1/requests refuses past it with 429. "
    "Default: no limits",
)
@click.option(
    "--upscale",
    is_flag=True,
    help="Run the upscaler too: every registered base gets an x2 upscale of its own (the shipped "
    "models/tiny-upscaler), curated again and registered as a derivative of the base under the upscaler's "
    "model version, with a licence of the base the operator takes",
)
@click.option(
    "--paid-requests",
    is_flag=True,
    help="POST /v1/requests takes only requests paid with x402 upto (the payer authorises the request's most, "
    "the settlement daemon charges what it cost by --request-pricing); without it requests are free",
)
@registration_option
@adaptive_option
@policy_option
@curation_head_option
@reviewer_option
@request_pricing_option
@cost_prices_option
@journal_option
@store_option
def up_command(
    state: Path | None,
    metrics_port: int,
    prompts: Path | None,
    api_port: int,
    network: str | None,
    rpc_port: int | None,
    quotas: Path | None,
    upscale: bool,
    paid_requests: bool,
    registration: str,
    adaptive: Any,
    policy: Path,
    curation_head: Path,
    reviewers: frozenset[str],
    request_pricing: Path,
    cost_prices: Path,
    journal: str | Path | None,
    store: str | Path | None,
) -> None:
    """Every daemon in one process on a fresh development chain, and the HTTP API with the dApp,
    until Ctrl-C.

    The chain is new each time (the embedded one lives in this process), so the state starts
    fresh too: --state must be empty or new (a folder in use is refused, never deleted), and
    without it each run gets a throwaway folder under .cache/up/, removed when it ends (the
    folder is printed). Submit work with `proofmint request PROMPT --state DIR` from another
    shell, or `POST /v1/requests` to the API (http://127.0.0.1:8080/openapi.json lists
    its routes).

    With an anvil node (`--rpc-port PORT` or `--network ethereum:local:foundry`) the other tools
    work on the same chain: `up` records its deployment where the ape scripts find it (`ape run
    license attach --network http://127.0.0.1:PORT ...`; the record goes when `up` ends), and a
    wallet can use the dApp (add the printed RPC, import a printed development account).

    Paths on the command line (--state, --prompts) are relative to the folder you run it from;
    the project's own files (models, caches, deployment records) are the repository's, wherever
    you run it from."""
    import shutil

    from agents.app.devnode import FOUNDRY

    if rpc_port is not None and network not in (None, FOUNDRY):
        raise click.BadParameter(f"--rpc-port is the port of an anvil node: not with --network {network}")
    network = network or (FOUNDRY if rpc_port is not None else UP_NETWORKS[0])
    if network == FOUNDRY and rpc_port is None:
        rpc_port = 8545
    requests = read_prompts(prompts) if prompts is not None else []  # before the slow setup, as the ports
    if journal is not None:
        check_fresh_journal(journal)
    root = project_root()
    state, throwaway = fresh_state(state.absolute() if state is not None else None, root / UP_STATES)
    with contextlib.ExitStack() as stack:
        if throwaway:  # made by this run under .cache/up/: gone with its chain
            stack.callback(shutil.rmtree, state, True)
        check_ports({"--metrics-port": metrics_port, "--api-port": api_port, "--rpc-port": rpc_port or 0})
        os.chdir(root)  # ape's project (contracts, ape-config.yaml) is the repository's
        import ape
        from ape import networks

        from agents.app.devnode import own_anvil

        quiet_libraries()
        if network == FOUNDRY:  # a node of our own, which Ctrl-C does not reach (see devnode)
            stack.enter_context(own_anvil(networks, port=rpc_port))
        stack.enter_context(networks.parse_network_choice(network))
        asyncio.run(
            _up(
                ape,
                root,
                state,
                metrics_port,
                requests,
                api_port,
                registration,
                policy,
                curation_head,
                reviewers,
                journal,
                store,
                (request_pricing, paid_requests),
                cost_prices,
                quotas,
                adaptive,
                upscale,
            )
        )


def check_fresh_journal(location: str | Path) -> None:
    """`up` starts a new chain, so its journal must hold nothing yet: a journal in use (jobs of
    another chain) is refused, never emptied."""
    from agents.core.locations import redact
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    journal = Journal(location, final=jobs.REGISTERED_OR_FINAL)
    try:
        held = sum(journal.counts().values())
    finally:
        journal.close()
    if held:
        raise click.BadParameter(
            f"{redact(location)} already journals {held} jobs (of another chain): `up` starts a new chain, so give "
            "it an empty journal (a new database), or leave --journal out",
            param_hint="--journal",
        )


def read_prompts(path: Path) -> list[GenerationRequest]:
    """The requests of `up --prompts`: one prompt per non-blank line, seeded by line number.
    A file that is not UTF-8 text, or a line that is no prompt, is refused with its line number
    (`click.BadParameter`) before anything is set up."""
    from agents.core.requests import GenerationRequest, GeneratorError

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise click.BadParameter(f"{path}: cannot be read ({exc.strerror})", param_hint="--prompts") from None
    except UnicodeDecodeError as exc:
        row = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise click.BadParameter(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} on line {row}); save it as UTF-8",
            param_hint="--prompts",
        ) from None
    requests: list[GenerationRequest] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                requests.append(GenerationRequest(prompt=line.strip(), seed=number - 1))
            except GeneratorError as exc:
                raise click.BadParameter(f"{path}, line {number}: {exc}", param_hint="--prompts") from None
    if not requests:
        raise click.BadParameter(f"{path}: no prompts (one per line)", param_hint="--prompts")
    return requests


def check_ports(ports: dict[str, int], host: str = "127.0.0.1") -> None:
    """Refuse a port another process holds before the slow setup (`click.BadParameter`); 0 is
    "off". A port freed by then and taken again later still fails where it is bound."""
    for option, port in ports.items():
        if not port:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError as exc:
                raise click.BadParameter(
                    f"{host}:{port} is in use ({exc.strerror}): stop what holds it or choose another port",
                    param_hint=option,
                ) from None
    if len({p for p in ports.values() if p}) < len([p for p in ports.values() if p]):
        raise click.BadParameter(f"the same port twice: {ports}", param_hint=", ".join(ports))


async def _up(
    ape: Any,
    root: Path,
    state: Path,
    metrics_port: int,
    requests: list[GenerationRequest],
    api_port: int,
    registration: str,
    policy: Path,
    curation_head: Path,
    reviewers: frozenset[str],
    journal: str | Path | None,
    store: str | Path | None,
    requests_paid: tuple[Path, bool],
    cost_prices: Path,
    quotas: Path | None,
    adaptive: Any = None,
    upscale: bool = False,
) -> None:
    from agents.api.serve import DEPS, api_app, serve
    from agents.app.wiring import build_agents, open_local
    from agents.core.costs import CostPrices
    from agents.core.metering import RequestPricing
    from agents.core.quotas import Quotas
    from agents.daemons.pipeline import DEFAULT_DAEMONS
    from agents.deploy.deployment import DEV_TOKEN_GRANT
    from agents.runtime import jobs
    from agents.runtime.telemetry import Metrics

    accounts = ape.accounts.test_accounts
    operator, origin_a, origin_b = accounts[0], accounts[2], accounts[3]
    metrics = Metrics()
    pricing = RequestPricing.from_json(requests_paid[0])
    daemons = [*DEFAULT_DAEMONS, "upscaler"] if upscale else list(DEFAULT_DAEMONS)
    setup, parts = await open_local(
        ape,
        root,
        state,
        originators=[(str(origin_a.address), 600_000), (str(origin_b.address), 400_000)],
        progress=lambda m: click.echo(m, err=True),
        metrics=metrics,
        policy=policy,
        head=curation_head,
        journal=journal,
        store=store,
        public_url=f"http://127.0.0.1:{api_port}" if api_port else None,
        request_pricing=pricing,
        names=daemons,
    )
    if upscale:
        click.echo(
            f"upscaler: model version {setup.upscaler_model_id}; each registered base gets an x2 upscale, "
            "registered as its derivative",
            err=True,
        )
    moderation = parts.owned_models.policy if parts.owned_models is not None else None
    if moderation is not None:
        click.echo(
            f"moderation: {policy} ({len(moderation.blocked_terms)} blocked terms, "
            f"{len(moderation.blocked)} blocked concepts; --policy FILE for another)",
            err=True,
        )
    for request in requests:
        key, _ = await parts.journal.call(
            jobs.submit_request, parts.journal, request, requester=str(operator.address), source="cli"
        )
        click.echo(f"job {key}: {request.prompt[:60]!r} (GET /v1/requests/{key})", err=True)
    click.echo(f"proofmint up: state {state}, metrics http://127.0.0.1:{metrics_port}/metrics", err=True)
    heads = " ".join(f"--head {size}={model_id}" for size, (_, model_id) in sorted(setup.head_models.items()))
    click.echo(
        f"model versions: the generator {setup.t2i_model_id} (`proofmint agent publisher|registrar --model-id "
        f"{setup.t2i_model_id}`), the curation head's circuits (`proofmint agent prover {heads}`)",
        err=True,
    )
    rpc = getattr(ape.chain.provider, "uri", None) if ape.chain.provider.name != "test" else None
    payer = accounts[5]
    api = None
    with contextlib.ExitStack() as stack:
        try:
            if rpc:
                record = record_for_tools(root, rpc, ape.chain.chain_id, setup)
                stack.callback(forget_record, record, record.read_bytes())
                await asyncio.to_thread(fund_escrow, ape, setup, payer, str(operator.address))
                click.echo(
                    f"deployment {record} (removed when up ends): the ape scripts take --network {rpc}, e.g. "
                    f"`ape run license attach --network {rpc} --asset 0x<digest> --price-per-use 0.001ether`",
                    err=True,
                )
            if api_port:
                trees = {setup.t2i_model_id: setup.data_tree}
                deciders = reviewers | {str(operator.address)}  # the operator reviews unless told otherwise
                app = api_app(
                    parts,
                    state / "api",
                    data_trees=trees,
                    rpc_url=rpc,
                    accept_requests=True,
                    reviewers=deciders,
                    agents=setup.agents,
                    request_pricing=pricing if requests_paid[1] else None,
                    cost_prices=CostPrices.from_json(cost_prices),
                    quotas=Quotas.from_json(quotas) if quotas is not None else None,
                )
                api = await serve(app, port=api_port)
                base = f"http://127.0.0.1:{api_port}"
                click.echo(f"API {base}/openapi.json, dApp {base}/app/", err=True)
                click.echo(
                    f"reviewers {', '.join(sorted(deciders))}: `proofmint review list`, then "
                    f"PROOFMINT_REVIEWER_KEY=<a reviewer's key> proofmint review approve|reject DIGEST",
                    err=True,
                )
                click.echo(
                    f"service {app[DEPS].paywall.service} (the operator): vouchers name it, payers deposit escrow "
                    "with it",
                    err=True,
                )
                if setup.agents is not None:
                    ids = ", ".join(f"{role} #{agent_id}" for role, agent_id in setup.agents.ids.items())
                    click.echo(
                        f"ERC-8004 agents {ids} ({setup.agents.registries.agent_registry}): "
                        f"{base}/.well-known/agent-registration.json; proven chunks are validated by "
                        f"{setup.agents.registries.validator} ({base}/v1/validations/0x<request hash>; a prover of "
                        f"its own: --erc8004-agent {setup.agents.ids['prover']} --public-url {base})",
                        err=True,
                    )
                token = app[DEPS].exact_token
                if token is not None:
                    click.echo(
                        f"x402 exact: terms priced in {token.name} ({token.address}, 6 decimals; "
                        f"{DEV_TOKEN_GRANT // 10**6:,} to each test account) are also offered to any x402 client "
                        f"(`ape run license attach --currency {token.address} --price-per-use '0.01 token' ...`)",
                        err=True,
                    )
                if requests_paid[1] and token is not None:
                    click.echo(
                        f"x402 upto: POST /v1/requests is paid in {token.name} (at most the request's maximum, "
                        f"charged what it cost by {requests_paid[0]}); payers approve Permit2 for the token once",
                        err=True,
                    )
                if rpc:
                    click.echo(
                        f"development payer {payer.address} (private key {payer.private_key}: a well-known test "
                        f"key, never use it on a real chain) has {DEV_ESCROW // 10**18} ETH of escrow with the "
                        f"service: PROOFMINT_PAYER_KEY=<its key> proofmint pay {base}/v1/assets/0x<digest>/content "
                        "-o image.png; wallets: add the network RPC "
                        f"{rpc} (chain id {ape.chain.chain_id}) and import it",
                        err=True,
                    )
                else:
                    click.echo(
                        "the embedded chain has no RPC for the ape scripts or browser wallets: use --rpc-port PORT",
                        err=True,
                    )
            if adaptive is not None:
                click.echo(
                    f"adaptive production: standard-lane requests waiting over {adaptive.after_s:g} s get "
                    f"{adaptive.factor:g} of their steps (at least {adaptive.min_steps}); lineages say so",
                    err=True,
                )
            agents = build_agents(parts, names=daemons, registration=registration, adaptive=adaptive)
            await serve_agents(agents, metrics, metrics_port)
        finally:
            if api is not None:
                await api.cleanup()
            parts.close()


DEV_ESCROW = 10 * 10**18
"""What `up` deposits for its development payer (test account 5) with the service, in wei."""


def record_for_tools(root: Path, rpc: str, chain_id: int, setup: Any) -> Path:
    """The deployment record of `up`'s node where the ape scripts look for the network
    `--network RPC` (`agents.deploy.operator.record_path`), listing the market, the development dollar and the
    ERC-8004 registries too."""
    from agents.daemons.market import MARKET
    from agents.deploy.deployment import DEV_TOKEN, Deployed, record_deployment
    from agents.deploy.erc8004 import CONTRACTS as AGENT_CONTRACTS
    from agents.deploy.operator import Target, record_path

    target = Target(choice=rpc, chain_id=chain_id, live=False, ephemeral=False)
    named = (MARKET, DEV_TOKEN, *(name for name in AGENT_CONTRACTS if name in setup.addresses))
    extra = [Deployed(name, setup.addresses[name], "", 0, 0) for name in named]
    return record_deployment(record_path(root, target), rpc, chain_id, [*setup.deployed, *extra])


def forget_record(path: Path, written: bytes) -> None:
    """Remove the record `up` wrote when it ends (its chain goes with it), unless someone has
    since written another there."""
    with contextlib.suppress(OSError):
        if path.read_bytes() == written:
            path.unlink()


def fund_escrow(ape: Any, setup: Any, payer: Any, service: str) -> None:
    """The development payer's escrow with the service (native currency), so a paid fetch works
    straight after `license attach` (blocking)."""
    licenses = ape.project.LicenseManager.at(setup.addresses["LicenseManager"])
    native = "0x" + "00" * 20
    licenses.deposit(native, service, DEV_ESCROW, sender=payer, value=DEV_ESCROW)


@click.command("request")
@click.argument("prompt")
@click.option("--seed", type=click.IntRange(0, 2**63 - 1), default=0, show_default=True)
@click.option("--steps", type=click.IntRange(1, 1000), default=25, show_default=True)
@click.option("--guidance", type=click.FloatRange(0.0, 50.0), default=1.5, show_default=True)
@click.option("--requester", default="cli", show_default=True, help="Who asks (an address, or a name)")
@click.option("--project", default=None, help="A free label (1 to 64 characters) costs are grouped by")
@click.option(
    "--lane",
    type=click.Choice(("standard", "fast")),
    default="standard",
    show_default=True,
    help="The generator serves the fast lane first (never starving the standard lane)",
)
@click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True)
@journal_option
def request_command(
    prompt: str,
    seed: int,
    steps: int,
    guidance: float,
    requester: str,
    project: str | None,
    lane: str,
    state: Path,
    journal: str | Path | None,
) -> None:
    """Journal a generation request for the daemons that share --state (or --journal)."""
    from agents.app.wiring import journal_location
    from agents.core.requests import GenerationRequest, GeneratorError
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    try:
        request = GenerationRequest(prompt=prompt, seed=seed, steps=steps, guidance=guidance)
    except GeneratorError as exc:
        raise click.BadParameter(str(exc), param_hint="PROMPT") from None
    if project is not None and not 1 <= len(project) <= 64:
        raise click.BadParameter("1 to 64 characters", param_hint="--project")
    opened = Journal(journal_location(state, journal), final=jobs.REGISTERED_OR_FINAL)
    try:
        extra = {"lane": lane, **({"project": project} if project is not None else {})}
        key, new = jobs.submit_request(opened, request, requester=requester, source="cli", extra=extra)
        job = opened.get(key)
    finally:
        opened.close()
    click.echo(f"{key} {'queued' if new else 'already journaled'} (at {job.stage if job else '?'})")


@click.command("costs")
@click.option("--state", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_STATE, show_default=True)
@journal_option
@click.option("--requester", default=None, help="Only this requester's jobs (any case)")
@click.option("--project", default=None, help="Only jobs with this project label")
@click.option("--model", type=click.IntRange(min=0), default=None, help="Only jobs of this generating model version")
@click.option("--since", type=click.FloatRange(min=0), default=0.0, help="Only jobs created since (unix seconds)")
@cost_prices_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object instead of the table")
def costs_command(
    state: Path,
    journal: str | Path | None,
    requester: str | None,
    project: str | None,
    model: int | None,
    since: float,
    cost_prices: Path,
    as_json: bool,
) -> None:
    """What the generation jobs journaled under --state (or --journal) consumed and cost, stage by
    stage: compute seconds, gas and fees as their receipts show them, bytes stored, priced by
    --cost-prices; in all, per job, and per asset registered."""
    import json

    from agents.app.wiring import journal_location
    from agents.core.costs import CostFilter, CostPrices, Settlements, summarise
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    wanted = CostFilter(requester, project, model, since)
    opened = Journal(journal_location(state, journal), final=jobs.REGISTERED_OR_FINAL)
    try:
        payloads, _ = jobs.payloads_since(opened, jobs.ASSET, since, wanted.takes, most=10**9)
        settled = jobs.settlements_since(opened, since, most=10**9)
    finally:
        opened.close()
    summary = summarise(payloads, CostPrices.from_json(cost_prices), Settlements(settled))
    if as_json:
        click.echo(json.dumps(summary, indent=1))
        return
    click.echo(f"{summary['jobs']} jobs, {summary['registered']} registered; prices from {cost_prices}")
    heads = ("wall s", "cpu s", "proof s", "gas", "fee (wei)", "bytes", "usd")
    click.echo(f"{'stage':<9} " + " ".join(f"{h:>{w}}" for h, w in zip(heads, (9, 9, 8, 11, 18, 10, 11), strict=True)))
    for name, row in summary["byStage"].items():
        click.echo(
            f"{name:<9} {row['wall_s']:>9.3f} {row['cpu_s']:>9.3f} {row['proof_s']:>8.3f} {int(row['gas']):>11,} "
            f"{int(row['fee_wei']):>18,} {int(row['stored_bytes']):>10,} {row['usd']:>11.6f}"
        )
    per_job, per_asset = summary["usdPerJob"], summary["usdPerRegisteredAsset"]
    click.echo(
        f"total ${summary['usd']:.6f}; per job {'-' if per_job is None else f'${per_job:.6f}'}; "
        f"per registered asset {'-' if per_asset is None else f'${per_asset:.6f}'}"
    )
