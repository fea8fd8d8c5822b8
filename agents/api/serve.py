"""Wires the API to the agents' parts (journal, store, chain client) and serves it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from agents.api.accounts import DataTrees
from agents.api.app import DEPS, ApiDeps, build_app
from agents.api.chainview import ChainView
from agents.api.errors import ApiError, error_response
from agents.api.exact import ExactToken
from agents.api.license_index import LicenseIndex
from agents.api.paywall import ChannelBook, Paywall
from agents.core.costs import CostPrices
from agents.core.locations import is_postgres
from agents.core.metering import RequestPricing
from agents.core.quotas import Quotas
from agents.core.settlement import SignedVoucher
from agents.deploy.deployment import DEV_TOKEN
from agents.deploy.erc8004 import AgentDirectory
from agents.runtime.jobs import submit_vouchers


@contextlib.asynccontextmanager
async def api_resources(
    parts: Any,
    state: Path,
    *,
    data_trees: DataTrees | None = None,
    rpc_url: str | None = None,
    service: str | None = None,
    reviewers: frozenset[str] = frozenset(),
    settles_exact: bool = True,
    agents: AgentDirectory | None = None,
    request_pricing: RequestPricing | None = None,
    cost_prices: CostPrices | None = None,
    quotas: Quotas | None = None,
) -> AsyncIterator[ApiDeps]:
    """The API's resources over `parts` (`agents.app.wiring.Parts`), open while the context is:
    the channel book under `state` (vouchers it holds and the journal lacks are journaled
    again) and the chain view. `data_trees`: originators' trees by model id (data-share proofs
    on the dashboard); `rpc_url`: a JSON-RPC endpoint of the chain for wallets, told to the
    dApp; `service`: the address whose vouchers the API accepts (default
    `parts.service_address()`: the service `parts` was opened with, else its chain key's
    address); `agents`: the operator's ERC-8004 agents, whose registration files it serves;
    `request_pricing`: generation requests are paid with x402 `upto` at these prices (with the
    `exact` token); `cost_prices`: what `GET /v1/costs` prices consumption at (None: the shipped);
    `quotas`: what each requester may use per period (None: no limits).
    `parts` stay the caller's."""
    client = parts.chain()
    service = service if service is not None else parts.service_address()
    chain_id = int(await client.node(lambda: client.web3.eth.chain_id))
    # with a PostgreSQL journal, the channel book lives beside it: every API process sharing the
    # journal counts the vouchers all of them accepted against a payer's escrow
    location = parts.journal.location if is_postgres(parts.journal.location) else state / "channels.db"
    book = await asyncio.to_thread(ChannelBook, location)
    try:
        journal = parts.journal

        def submit(vouchers: Sequence[SignedVoucher]) -> list[str]:
            return submit_vouchers(journal, vouchers)

        view = ChainView(client, chain_id)
        paywall = Paywall(book, LicenseIndex(view), submit, service=service)
        await paywall.resubmit()
        yield ApiDeps(
            journal,
            parts.store,
            view,
            paywall,
            parts.metrics,
            dict(data_trees or {}),
            rpc_url,
            reviewers=frozenset(reviewers),
            exact_token=await exact_token_of(client) if settles_exact else None,
            agents=agents,
            request_pricing=request_pricing,
            cost_prices=cost_prices,
            quotas=quotas,
        )
    finally:
        book.close()


async def exact_token_of(client: Any) -> ExactToken | None:
    """The EIP-3009 token the API takes x402 `exact` payments in: a development chain's dollar
    (`agents.deploy.deployment.DEV_TOKEN`, in the deployment record), its EIP-712 domain read
    from the token itself (ERC-5267 `eip712Domain`); None without one."""
    if DEV_TOKEN not in client.contracts:
        return None
    domain = await client.call(DEV_TOKEN, "eip712Domain")
    return ExactToken(str(client.contract(DEV_TOKEN).address), str(domain[1]), str(domain[2]))


def api_app(
    parts: Any,
    state: Path,
    *,
    data_trees: DataTrees | None = None,
    rpc_url: str | None = None,
    service: str | None = None,
    reviewers: frozenset[str] = frozenset(),
    settles_exact: bool = True,
    agents: AgentDirectory | None = None,
    request_pricing: RequestPricing | None = None,
    cost_prices: CostPrices | None = None,
    quotas: Quotas | None = None,
    **app_options: Any,
) -> web.Application:
    """The API over the agents' `parts` as an application that owns its resources
    (`api_resources`, entered on start-up and left on clean-up): `runner.cleanup()` closes
    them. `app[DEPS]` holds them while it runs. `settles_exact`: whether `parts`' chain key may
    settle x402 `exact` payments (it pays their gas); without it only vouchers are offered.
    `app_options` go to `build_app`."""
    return build_app(
        lambda: api_resources(
            parts,
            state,
            data_trees=data_trees,
            rpc_url=rpc_url,
            service=service,
            reviewers=reviewers,
            settles_exact=settles_exact,
            agents=agents,
            request_pricing=request_pricing,
            cost_prices=cost_prices,
            quotas=quotas,
        ),
        metrics=parts.metrics,
        **app_options,
    )


MAX_LINE_BYTES = 64 * 1024
"""Longest request line and header the server parses (aiohttp's default is 8,190 bytes). Lines up
to this reach the application, whose validation answers bad input in the JSON error shape; a
longer one is refused by the HTTP parser itself, answered in the same shape by `_ParserErrors`."""


class _ParserErrors(RequestHandler):
    """aiohttp's connection handler, answering what its HTTP parser refuses (a request line or
    header past `MAX_LINE_BYTES`, a malformed request) in the API's JSON error shape, logged as one
    warning line instead of a traceback. Other errors are aiohttp's."""

    def handle_error(
        self, request: BaseRequest, status: int = 500, exc: BaseException | None = None, message: str | None = None
    ) -> web.StreamResponse:
        if status != 400 or not isinstance(exc, HttpProcessingError) or request.writer.output_size > 0:
            return super().handle_error(request, status, exc, message)
        reason = (exc.message or "malformed").split(":", 1)[0].strip()[:120]
        self.logger.warning("refused a malformed HTTP request from %s: %s", request.remote, reason)
        response = error_response(ApiError(400, f"malformed HTTP request: {reason}", code="bad_http_request"))
        response.force_close()
        return response


class _Server(Server):
    def __call__(self) -> RequestHandler:
        return _ParserErrors(self, loop=self._loop, **self._kwargs)


class _Runner(web.AppRunner):
    async def _make_server(self) -> Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the application's own server, handing connections to _ParserErrors
        return server


async def serve(app: web.Application, host: str = "127.0.0.1", port: int = 8080) -> web.AppRunner:
    """Starts serving `app`; the caller owns the runner (`await runner.cleanup()`)."""
    runner = _Runner(app, access_log=None, max_line_size=MAX_LINE_BYTES, max_field_size=MAX_LINE_BYTES)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


__all__ = ["DEPS", "ApiDeps", "api_app", "api_resources", "build_app", "serve"]
