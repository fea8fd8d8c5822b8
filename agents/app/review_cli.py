"""`proofmint review list|approve|reject|export`: human review from the command line.

`list`, `approve` and `reject` talk to a proofmint API (`--api`, default `proofmint up`'s): a
decision is signed here with the reviewer's key from an environment variable (never the command
line) over the EIP-712 domain the API names (`GET /v1/review/eip712`), and the API checks that the
key is one of the deployment's reviewers. `export` writes every decision kept in a state's journal
as JSON lines, labelled data for the curation head's trainer.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from agents.app.keys import hex32_option, key_from_env
from agents.app.options import journal_option
from agents.core.errors import PermanentError

DEFAULT_API = "http://127.0.0.1:8080"
DEFAULT_KEY_ENV = "PROOFMINT_REVIEWER_KEY"


class ReviewCliError(PermanentError):
    """The API refused, or could not be reached; the message says what it answered."""


async def _call(method: str, url: str, body: Any = None) -> Any:
    import aiohttp

    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session,
            session.request(method, url, json=body) as response,
        ):
            try:
                answer = await response.json(content_type=None)
            except ValueError:
                raise ReviewCliError(f"{url} answered {response.status} without JSON: is it a proofmint API?") from None
            if response.status >= 400:
                error = answer.get("error", {}) if isinstance(answer, dict) else {}
                raise ReviewCliError(f"{error.get('message', answer)} ({response.status} {error.get('code', '')})")
            return answer
    except aiohttp.ClientError as exc:
        raise ReviewCliError(f"cannot reach {url}: {exc}") from None
    except TimeoutError:
        raise ReviewCliError(f"{url} did not answer within 30 s") from None


@click.group("review")
def review_group() -> None:
    """Human review: the queue of assets the curator sent to a person, and signed decisions."""


@review_group.command("list")
@click.option("--api", default=DEFAULT_API, show_default=True, help="The proofmint API")
@click.option("--limit", type=click.IntRange(1, 200), default=50, show_default=True)
def list_command(api: str, limit: int) -> None:
    """The assets waiting for a reviewer, oldest first."""
    page = asyncio.run(_call("GET", f"{api.rstrip('/')}/v1/review?limit={limit}"))
    click.echo(f"{page['total']} in review")
    for item in page["items"]:
        alignment = "-" if item["alignment"] is None else f"{item['alignment']:.3f}"
        click.echo(f"{item['digest']}  alignment {alignment}  {item['prompt'][:60]!r}")
        if item.get("reason"):
            click.echo(f"    {item['reason']}")


def _decide(api: str, digest: bytes, approve: bool, reason: str, key_env: str, valid_for: int) -> None:
    from eth_account import Account

    from agents.core.reviews import ReviewDecision, ReviewError, sign_review

    key = key_from_env(key_env, "reviewer")
    base = api.rstrip("/")
    typed = asyncio.run(_call("GET", f"{base}/v1/review/eip712"))
    domain = typed["domain"]
    reviewer = str(Account.from_key(key).address)
    if reviewer.lower() not in {r.lower() for r in typed.get("reviewers", [])}:
        raise ReviewCliError(f"{reviewer} ({key_env}) is not a reviewer of this deployment; its reviewers: "
                             f"{', '.join(typed.get('reviewers', [])) or 'none'}")  # fmt: skip
    try:
        decision = ReviewDecision(reviewer, digest, approve, reason, int(time.time()) + valid_for)
    except ReviewError as exc:
        raise click.UsageError(str(exc)) from None
    signature = sign_review(decision, key, int(domain["chainId"]), str(domain["verifyingContract"]))
    body = {**decision.as_json(), "signature": "0x" + signature.hex()}
    body.pop("asset")
    outcome = asyncio.run(_call("POST", f"{base}/v1/review/0x{digest.hex()}", body))
    click.echo(f"{outcome['key']} -> {outcome['stage']}: {outcome['reason']}")


_api_option = click.option("--api", default=DEFAULT_API, show_default=True, help="The proofmint API")
_key_option = click.option(
    "--key-env", default=DEFAULT_KEY_ENV, show_default=True, help="Env var holding the reviewer's private key"
)
_valid_option = click.option(
    "--valid-for", type=click.IntRange(60, 86_400), default=600, show_default=True, help="Seconds the signature holds"
)


@review_group.command("approve")
@click.argument("digest", callback=hex32_option("an asset digest"))
@click.option("--reason", default="", help="Why (optional when approving)")
@_api_option
@_key_option
@_valid_option
def approve_command(digest: bytes, reason: str, api: str, key_env: str, valid_for: int) -> None:
    """Approve the asset DIGEST: it continues through the pipeline (published, registered, proven)."""
    _decide(api, digest, True, reason, key_env, valid_for)


@review_group.command("reject")
@click.argument("digest", callback=hex32_option("an asset digest"))
@click.option("--reason", required=True, help="Why (kept with the asset and in the labelled data)")
@_api_option
@_key_option
@_valid_option
def reject_command(digest: bytes, reason: str, api: str, key_env: str, valid_for: int) -> None:
    """Reject the asset DIGEST: it ends, with the reason."""
    _decide(api, digest, False, reason, key_env, valid_for)


@review_group.command("export")
@click.option(
    "--state", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
    help="The agents' state folder (its journal holds the decisions); or --journal",
)  # fmt: skip
@journal_option
@click.option("-o", "--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=Path("-"))
def export_command(state: Path | None, journal: str | Path | None, out: Path) -> None:
    """Every review decision as JSON lines (digest, prompt, image embedding, curator alignment, label,
    reviewer, reason, signature, time): labelled data for the curation head's trainer."""
    from agents.runtime import jobs
    from agents.runtime.journal import Journal

    if journal is None:
        if state is None:
            raise click.UsageError("pass --state (the agents' state folder) or --journal (where their journal lives)")
        journal = state / "journal.db"
    if isinstance(journal, Path) and not journal.is_file():
        raise click.BadParameter(f"{journal} is not a journal (no such file)", param_hint="--state/--journal")
    opened = Journal(journal, final=jobs.FINAL)
    try:
        rows = jobs.reviewed(opened)
    finally:
        opened.close()
    text = "".join(json.dumps(row, sort_keys=True) + "\n" for row in rows)
    if str(out) == "-":
        sys.stdout.write(text)
    else:
        try:
            out.write_text(text, encoding="utf8")
        except OSError as exc:
            raise click.ClickException(f"cannot write {out}: {exc.strerror}") from None
    click.echo(f"{len(rows)} decisions", err=True)
