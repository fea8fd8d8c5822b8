"""Settle signed vouchers: `ape run settle --vouchers FILE --account SERVICE [--max-batch N] [--dry-run]`.

Only a service may settle the vouchers that name it, so the account is the service. One bad
voucher never holds up the others: each is set aside with the reason and the rest settle.

1. Read the voucher file (one JSON voucher per line, as `ape run license sign` appends them).
2. Plan with `agents.core.settlement.plan_settlement`, as the settlement daemon does: the newest
   voucher of each channel (payer, service, terms) among those that would settle; left out,
   saying why, what the contract would revert on or skip (another service's, settled already,
   beyond the payer's escrow with the service, expired, unknown or unmetered terms, a bad
   signature, ...). A line anyone could append (the payer's channel, a higher amount, a forged
   signature or any other defect) is left out for its defect and never supersedes the payer's
   real voucher.
3. The signature of each voucher that could be its channel's newest is checked as `settle` will
   check it, before it may supersede the older ones (step 2): an account without code must
   have signed the voucher's EIP-712 digest itself (65 bytes, low s, v 27/28 or 0/1; a bad one
   would revert the whole batch); a payer with code is an ERC-1271 wallet (its signature
   travels whole, as the daemon sends it) and must accept the signature through
   `isValidSignature` (a refusal would be skipped). A voucher that fails is left out, saying
   why, and the next older voucher of its channel is checked in its place, so only vouchers that
   pass count against the payer's escrow.
4. Simulate every batch (`eth_call` as the service, on the pending state; at most 24 wallet
   signatures each, `MAX_WALLET_SIGNATURES`). A batch that would still revert is bisected until
   each voucher that reverts on its own is set aside with the contract's error; the rest are
   put back into one batch when that simulates cleanly.
5. Unless `--dry-run`, send one `settle(currency, service, vouchers, walletSignatures)` per
   batch of at most 192 vouchers (`MAX_VOUCHERS`), after confirmation on a live network. A
   voucher settled by another settler of the service, left uncovered by a withdrawal, or refused
   by its wallet between planning and mining is skipped by the contract, not reverted: the
   receipt's `VoucherSkipped` events are printed with their reasons. The money moves from the
   payers' escrow to the assets' revenue, never to the sender.

Exit status: 0 when every voucher naming the service is settled (now or before) or superseded
by a newer one; 3 (`EXIT_LEFT_OUT`) when vouchers were left out that need attention (a bad
signature, beyond the payer's escrow, expired, unknown terms, would revert, skipped when mined
for want of escrow or by its wallet): the rest were settled all the same (with `--dry-run`,
would be), and the last line sums it up; 1 when nothing could be done (an unreadable file, no
node, no deployment), 2 for a usage error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from pathlib import Path
from typing import Any

import ape
import click
from web3.exceptions import ContractLogicError, Web3RPCError

from agents.api.paywall import PaymentRejectedError, signer_of
from agents.core.settlement import (
    ALREADY_SETTLED,
    MAX_VOUCHERS,
    SKIP_REASONS,
    Batch,
    Defect,
    SignedVoucher,
    SkipKind,
    TermsView,
    VoucherFileError,
    load_vouchers,
    plan_settlement,
    settleable,
)
from agents.core.vouchers import compact_signature, voucher_digest
from agents.deploy.operator import Session, cli_errors, confirm_broadcast, open_session
from scripts._cli import OperatorCommand, currency_of

EXIT_LEFT_OUT = 3
"""Exit status when vouchers needing attention were left out (the rest settled)."""
ROUTINE = frozenset({SkipKind.SUPERSEDED, SkipKind.OTHER_SERVICE, SkipKind.ALREADY_SETTLED, SkipKind.BELOW_SETTLED})
"""Left out as a matter of course: nothing is owed that this run could collect."""
ERC1271_MAGIC = bytes.fromhex("1626ba7e")
"""`IERC1271.isValidSignature.selector`: what a wallet answers for a signature it accepts."""
WALLET_CHECK_GAS = 100_000
"""`LicenseManager.WALLET_CHECK_GAS`: the gas `settle` gives a wallet's `isValidSignature`."""


def read_vouchers(path: Path) -> list[SignedVoucher]:
    """The vouchers in a voucher file; VoucherFileError (one line) for a file that is not one."""
    try:
        return load_vouchers(path)
    except UnicodeDecodeError as exc:
        raise VoucherFileError(
            f"{path}: not a voucher file: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); "
            "a voucher file holds one JSON voucher per line, as `ape run license sign` appends them"
        ) from exc


class SignatureCheck:
    """Whether `settle` will accept each voucher's signature, judged as the contract judges it
    (see the module text, step 3). Payers' code and verdicts are looked up once. As a container
    it holds the payers with code (`payer in check`), looked up when asked: the planner's
    `wallets`."""

    def __init__(self, web3: Any, chain_id: int, licenses: str) -> None:
        self.web3, self.chain_id, self.licenses = web3, chain_id, licenses
        self._wallet: dict[str, bool] = {}
        self._verdicts: dict[int, str | None] = {}

    def is_wallet(self, payer: str) -> bool:
        if payer not in self._wallet:
            self._wallet[payer] = len(bytes(self.web3.eth.get_code(payer))) > 0
        return self._wallet[payer]

    def __contains__(self, payer: object) -> bool:
        return isinstance(payer, str) and self.is_wallet(payer)

    def defect(self, sv: SignedVoucher) -> Defect | None:
        """`plan_settlement`'s `signature_check`: None when the signature will pass, else why not."""
        why = self.refusal(sv)
        if why is None:
            return None
        return (why, SkipKind.WALLET_REJECTED if self.is_wallet(sv.channel[0]) else SkipKind.BAD_SIGNATURE)

    def wallets(self, payers: Iterable[str]) -> set[str]:
        """The payers that hold code: their signatures travel whole (`Batch.call_args`)."""
        return {payer for payer in payers if self.is_wallet(payer)}

    def refusal(self, sv: SignedVoucher) -> str | None:
        """None when the signature will pass; else why not."""
        if id(sv) not in self._verdicts:
            self._verdicts[id(sv)] = self._judge(sv)
        return self._verdicts[id(sv)]

    def _judge(self, sv: SignedVoucher) -> str | None:
        payer = sv.channel[0]
        try:
            signer: str | None = signer_of(sv, self.chain_id, self.licenses)
            problem = f"bad signature: signed by {signer}, not by the payer"
        except PaymentRejectedError as exc:
            signer, problem = None, f"bad signature: {exc}"
        if self.is_wallet(payer):
            if signer == payer or self._wallet_accepts(payer, sv):
                return None
            return f"the payer's wallet {payer} (ERC-1271) refuses the signature"
        if signer != payer:
            return problem
        if compact_signature(sv.signature) is None:  # not writable in the compact form settle takes
            return "bad signature: not an EIP-2098 compact-able signature (v must be 27/28 or 0/1, s low)"
        return None

    def _wallet_accepts(self, payer: str, sv: SignedVoucher) -> bool:
        digest = voucher_digest(sv.voucher, self.chain_id, self.licenses)
        data = (
            ERC1271_MAGIC
            + digest
            + (64).to_bytes(32, "big")
            + len(sv.signature).to_bytes(32, "big")
            + sv.signature.ljust(-(-len(sv.signature) // 32) * 32, b"\0")
        )
        call = {"from": self.licenses, "to": payer, "data": data, "gas": WALLET_CHECK_GAS}
        try:
            answer = bytes(self.web3.eth.call(call, "pending"))
        except (ContractLogicError, Web3RPCError):  # a wallet that reverts or runs out of gas refuses
            return False
        return len(answer) >= 32 and answer[:4] == ERC1271_MAGIC


def describe(sv: SignedVoucher) -> str:
    v = sv.voucher
    return f"payer {sv.channel[0]} service {sv.channel[1]} terms {v.terms_id} cumulative {v.cumulative_amount}"


def chain_views(session: Session) -> tuple[Callable[..., Any], ...]:
    """`plan_settlement`'s readers, each value read once however often the plan is made."""
    licenses = session.core.licenses
    count = int(session.read(licenses, "termsCount"))

    @cache
    def terms_of(terms_id: int) -> TermsView | None:
        if not 1 <= terms_id <= count:  # getTerms reverts UnknownTerms: the plan leaves it out instead
            return None
        t = session.read(licenses, "getTerms", terms_id)
        return TermsView(asset=bytes(t.asset), currency=str(t.currency), price_per_use=int(t.pricePerUse))

    @cache
    def settled_of(payer: str, named: str, terms_id: int) -> int:
        return int(licenses.settledOf(payer, named, terms_id))

    @cache
    def escrow_of(payer: str, currency: str, named: str) -> int:
        return int(licenses.escrowOf(payer, currency, named)[0])

    return terms_of, settled_of, escrow_of


@click.command(
    cls=OperatorCommand,
    epilog="Exit status: 0 when every voucher naming the service is settled (now or before) or superseded; "
    f"{EXIT_LEFT_OUT} when some were left out that need attention (each printed as a `skip` line with why) and "
    "the rest settled; 1 on an error (nothing sent); 2 on a usage error.",
)
@click.option("--vouchers", "path", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--max-batch", type=click.IntRange(1, MAX_VOUCHERS), default=MAX_VOUCHERS, show_default=True)
@click.option("--dry-run", is_flag=True, help="Plan, check and simulate only; send nothing")
@click.option(
    "--account",
    "account_alias",
    default=None,
    help="The service (its ape account alias, or test:N on development chains): only it may settle its vouchers",
)
@click.option("--yes", is_flag=True, help="Broadcast on a live network without asking")
def cli(network, provider, path, max_batch, dry_run, account_alias, yes):  # type: ignore[no-untyped-def]
    """Settle the vouchers naming the account (the service) in a voucher file, in as few
    transactions as the batch cap allows. A voucher that cannot be settled (bad signature, beyond
    the payer's escrow, expired, would revert) is left out with the reason and the rest settle;
    then the exit status is 3."""
    with cli_errors():
        vouchers = read_vouchers(path)
        session = open_session(ape, network, provider, account_alias)
        licenses = session.core.licenses
        service = str(session.account.address)
        click.echo(f"network   {session.target.choice} ({session.origin})")
        click.echo(f"service   {service} (the account: only a service may settle its vouchers)")
        click.echo(f"vouchers  {len(vouchers)} in {path}")

        terms_of, settled_of, escrow_of = chain_views(session)
        now = int(ape.chain.pending_timestamp)
        check = SignatureCheck(session.web3, session.target.chain_id, str(licenses.address))

        planned = plan_settlement(
            vouchers,
            now=now,
            settled_of=settled_of,
            terms_of=terms_of,
            escrow_of=escrow_of,
            service=service,
            max_vouchers=max_batch,
            signature_check=check.defect,
            wallets=check,
        )
        attention = 0
        for skipped in planned.skipped:
            click.echo(f"skip      {describe(skipped.voucher)}: {skipped.reason}")
            attention += skipped.kind not in ROUTINE

        def simulate(batch: Batch) -> object:
            wallets = check.wallets(sv.channel[0] for sv in batch.vouchers)
            return session.simulate(licenses, "settle", *batch.call_args(wallets))

        money = cache(lambda currency: currency_of(session, currency))
        batches: list[Batch] = []
        for batch in planned.batches:
            parts, set_aside = settleable(batch, simulate)
            for sv, why in set_aside:
                click.echo(f"skip      {describe(sv)}: {why}")
            attention += len(set_aside)
            for part in parts:
                click.echo(f"simulated {len(part.vouchers)} vouchers in {money(part.currency).symbol}: would succeed")
            batches += parts
        count = sum(len(b.vouchers) for b in batches)
        if batches:
            amounts: dict[str, int] = {}
            for batch in batches:
                for sv in batch.vouchers:
                    due = sv.voucher.cumulative_amount - settled_of(*sv.channel)
                    amounts[batch.currency] = amounts.get(batch.currency, 0) + due
            for currency, amount in amounts.items():
                click.echo(f"to settle {money(currency).show(amount)}")
            click.echo(f"plan      {count} vouchers in {len(batches)} transaction(s)")
        else:
            click.echo("nothing to settle")
        settled = 0
        if batches and not dry_run:
            confirm_broadcast(session.target, yes, f"Send {len(batches)} settle transaction(s)")
            for number, batch in enumerate(batches, start=1):
                wallets = check.wallets(sv.channel[0] for sv in batch.vouchers)
                receipt = licenses.settle(*batch.call_args(wallets), sender=session.account)
                settled_here = len(receipt.events.filter(licenses.VoucherSettled))
                settled += settled_here
                for event in receipt.events.filter(licenses.VoucherSkipped):
                    kind = SKIP_REASONS[int(event.reason)]
                    reason = ALREADY_SETTLED if kind is SkipKind.ALREADY_SETTLED else kind.value.replace("_", " ")
                    attention += kind not in ROUTINE
                    click.echo(
                        f"skipped   payer {event.payer} terms {event.termsId} cumulative {event.cumulativeAmount} "
                        f"when mined: {reason}"
                    )
                per = receipt.gas_used / len(batch.vouchers)
                click.echo(
                    f"settled   batch {number}/{len(batches)}: {settled_here} of {len(batch.vouchers)} vouchers, gas "
                    f"{receipt.gas_used:,} ({per:,.0f} per voucher), tx {receipt.txn_hash}"
                )
        done = f"would settle {count}" if dry_run else f"settled {settled}"
        if attention:
            click.echo(
                f"summary   {done} voucher(s); {attention} left out that need attention (see `skip` above): "
                f"exit status {EXIT_LEFT_OUT}"
            )
            raise click.exceptions.Exit(EXIT_LEFT_OUT)
        click.echo(f"summary   {done} voucher(s); nothing left out that needs attention")
