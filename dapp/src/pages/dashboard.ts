import type { Hex } from "viem";
import { typedAmount, type Context } from "../context";
import { actionButton, h, replace } from "../dom";
import { amount, ETH, perpetual, short, stillValid, when } from "../format";


/** What the connected account is owed and holds: royalties (creator, model developer, data
 * originator, treasury), revenue waiting to be split, escrow, licences. */
export async function dashboard(ctx: Context, view: HTMLElement, refresh: () => void): Promise<void> {
  const wallet = ctx.wallet();
  if (!wallet?.account) {
    replace(
      view,
      h("h1", {}, "Dashboard"),
      h("p", {}, "Connect a wallet to see what you are owed as a creator, a model developer or a training-data originator, your escrow and your licences."),
      actionButton("Connect wallet", async () => {
        await ctx.requireWallet().catch(() => undefined);
      }, { class: "primary", "data-action": "connect" }),
    );
    return;
  }
  const account = wallet.account;
  const [owed, escrow, licences] = await Promise.all([
    ctx.api.owed(account),
    ctx.api.escrow(account),
    ctx.api.licences(account),
  ]);
  const splitter = ctx.deployment.contracts.RoyaltySplitter;
  const lm = ctx.deployment.contracts.LicenseManager;
  const balance = BigInt(owed.balance);
  const run = (what: string, action: Parameters<Context["act"]>[1]) => async () => {
    if (await ctx.act(what, action)) refresh();
  };

  const withdraw = actionButton(
    balance === 0n ? "Nothing to withdraw" : `Withdraw ${amount(balance)}`,
    run("Withdrawing royalties", async (w) => {
      const r = await w.send(splitter, "withdraw", [ETH, w.account]);
      return `Withdrew ${amount(balance)} to ${short(account)} (block ${r.blockNumber})`;
    }),
    { class: "primary", "data-action": "withdraw", disabled: balance === 0n },
  );

  const pending = owed.assets.filter((a) => BigInt(a.pendingRevenue) > 0n);
  const assetRows = owed.assets.map((a) =>
    h("tr", { "data-digest": a.digest },
      h("td", {}, h("a", { href: `#/asset/${a.digest}` }, short(a.digest)), " ", h("span", { class: "muted" }, a.prompt ?? "")),
      h("td", { class: "num" }, amount(a.distributed)),
      h("td", { class: "num" }, amount(a.pendingRevenue)),
      h("td", { class: "num", "data-cost": String(a.costUsd ?? ""), title: costTitle(a.costByStage) }, usd(a.costUsd)),
      h("td", { class: "num", "data-margin": String(a.marginUsd ?? "") }, usd(a.marginUsd)),
      h("td", {},
        BigInt(a.pendingRevenue) > 0n
          ? actionButton("Split", run("Splitting revenue", async (w) => {
              const r = await w.send(splitter, "distribute", [a.digest, ETH]);
              return `Split ${amount(a.pendingRevenue)} of ${short(a.digest)} among its payees (block ${r.blockNumber})`;
            }), { "data-action": "distribute" })
          : null),
    ),
  );

  const shareRows = owed.dataShares.map((s) =>
    h("tr", { "data-model": s.modelId },
      h("td", {}, `model version ${s.modelId}`),
      h("td", { class: "num" }, `${(s.weight / 10_000).toFixed(2)}%`),
      h("td", { class: "num" }, amount(s.claimed)),
      h("td", { class: "num" }, amount(s.claimable)),
      h("td", {},
        BigInt(s.claimable) > 0n
          ? actionButton("Claim", run("Claiming the data share", async (w) => {
              const r = await w.send(splitter, "claimDataShare", [BigInt(s.modelId), ETH, account, BigInt(s.weight), s.proof as Hex[]]);
              return `Claimed ${amount(s.claimable)} from model version ${s.modelId}'s data pool (block ${r.blockNumber})`;
            }), { "data-action": "claim" })
          : null),
    ),
  );

  // the escrow with this server's service: the one its vouchers draw on
  const service = ctx.deployment.service;
  const escrowFree = BigInt(escrow.balance) - BigInt(escrow.pendingWithdrawal);
  const amountInput = h("input", { type: "text", inputmode: "decimal", "aria-label": "amount of escrow to withdraw in ETH", id: "escrow-withdraw-amount", value: "" });
  const now = Date.now() / 1000;
  // where a withdrawal request stands, by the chain's clock (the API reads it)
  const pendingWei = BigInt(escrow.pendingWithdrawal);
  const requested = escrow.withdrawal !== "none";
  const expired = escrow.withdrawal === "expired";
  const unlocked = escrow.withdrawal === "withdrawable";
  const requestState = !requested
    ? ""
    : expired
      ? ` · the withdrawal of ${amount(pendingWei)} expired ${when(escrow.expiresAt)} unwithdrawn: request it again (or cancel it)`
      : ` · withdrawal of ${amount(pendingWei)} requested: ${unlocked ? "unlocked" : "unlocks"} ${when(escrow.unlockAt)}, expires ${when(escrow.expiresAt)} unless withdrawn by then`;

  replace(
    view,
    h("h1", {}, "Dashboard"),
    h("p", { class: "muted" }, "Account ", h("code", {}, account), ". Royalties are pull payments: split an asset's revenue, claim data shares, then withdraw."),
    h("section", { class: "panel", id: "royalties" },
      h("h2", {}, "Royalties you can withdraw"),
      h("p", { class: "big", id: "royalty-balance", "data-wei": owed.balance }, amount(balance)),
      withdraw,
    ),
    h("section", { class: "panel", id: "created" },
      h("h2", {}, "Assets you created"),
      owed.assets.length === 0
        ? h("p", { class: "muted" }, "None registered with this account as creator.")
        : h("div", {},
            h("p", { class: "muted" }, pending.length ? `${pending.length} with revenue waiting to be split among creator, model developer, data originators and parents.` : "No revenue waiting to be split."),
            h("table", { class: "list" },
              h("thead", {}, h("tr", {}, h("th", {}, "Asset"), h("th", { class: "num" }, "Split so far"), h("th", { class: "num" }, "Waiting"), h("th", { class: "num", title: "What making it cost the operator: compute, gas, storage, proof" }, "Cost"), h("th", { class: "num", title: "Revenue (split and waiting) less cost, in US dollars" }, "Margin"), h("th", {}, ""))),
              h("tbody", {}, assetRows))),
    ),
    owed.models.length
      ? h("section", { class: "panel", id: "models" },
          h("h2", {}, "Model versions you develop"),
          h("ul", {}, owed.models.map((m) => h("li", {}, `version ${m.modelId}: ${m.developerBps / 100}% of each asset's revenue to you, ${m.dataBps / 100}% to its data originators`))))
      : null,
    owed.dataShares.length
      ? h("section", { class: "panel", id: "data-shares" },
          h("h2", {}, "Training-data shares"),
          h("table", { class: "list" },
            h("thead", {}, h("tr", {}, h("th", {}, "Model"), h("th", { class: "num" }, "Your weight"), h("th", { class: "num" }, "Claimed"), h("th", { class: "num" }, "Claimable"), h("th", {}, ""))),
            h("tbody", {}, shareRows)))
      : null,
    h("section", { class: "panel", id: "escrow" },
      h("h2", {}, "Escrow for pay-per-use"),
      h("p", { class: "muted" }, "With this server's service ", h("code", { title: service }, short(service)),
        ": only vouchers naming it draw on this escrow, and a requested withdrawal no longer pays for uses."),
      h("p", { id: "escrow-state", "data-withdrawal": escrow.withdrawal, "data-unlock": escrow.unlockAt, "data-expires": escrow.expiresAt },
        `Balance ${amount(escrow.balance)}`, requestState),
      h("div", { class: "row" },
        amountInput,
        actionButton("Request withdrawal", async () => {
          const wei = typedAmount(ctx, amountInput);
          if (wei === null) return;
          if (wei > escrowFree) {
            ctx.notify(`you can withdraw at most ${amount(escrowFree > 0n ? escrowFree : 0n)}`, "error");
            return;
          }
          await run("Requesting an escrow withdrawal", async (w) => {
            const r = await w.send(lm, "requestWithdrawal", [ETH, service, wei]);
            return `Withdrawal of ${amount(wei)} requested (block ${r.blockNumber}); it unlocks after the delay and expires a window later`;
          })();
        }, { "data-action": "request-withdrawal" }),
        unlocked
          ? actionButton("Withdraw escrow", run("Withdrawing escrow", async (w) => {
              const r = await w.send(lm, "withdrawEscrow", [ETH, service, w.account]);
              return `Escrow withdrawn (block ${r.blockNumber})`;
            }), { "data-action": "withdraw-escrow" })
          : null,
        requested
          ? actionButton("Cancel withdrawal", run("Cancelling the withdrawal", async (w) => {
              await w.send(lm, "cancelWithdrawal", [ETH, service]);
              return "Withdrawal cancelled";
            }), { "data-action": "cancel-withdrawal" })
          : null,
      ),
    ),
    h("section", { class: "panel", id: "held-licences" },
      h("h2", {}, "Licences you hold"),
      licences.items.length === 0
        ? h("p", { class: "muted" }, "None yet: buy one on an asset's page.")
        : h("table", { class: "list" },
            h("thead", {}, h("tr", {}, h("th", {}, "Licence"), h("th", {}, "Terms"), h("th", { class: "num" }, "Paid"), h("th", {}, "Valid until"))),
            h("tbody", {}, licences.items.map((l) =>
              h("tr", {},
                h("td", {}, h("code", {}, short(l.licenseId.length > 12 ? `0x${BigInt(l.licenseId).toString(16)}` : l.licenseId))),
                h("td", {}, String(l.termsId)),
                h("td", { class: "num" }, amount(l.price)),
                h("td", {}, perpetual(l.expiresAt) ? "perpetual" : stillValid(l.expiresAt, now) ? when(l.expiresAt) : `expired ${when(l.expiresAt)}`))))),
    ),
  );
}

/** US dollars to the cent below a dollar's hundredth, "-" where unknown. */
function usd(value: number | null | undefined): string {
  if (value === null || value === undefined) return "-";
  const digits = Math.abs(value) >= 0.01 ? 2 : 6;
  return `${value < 0 ? "-" : ""}$${Math.abs(value).toFixed(digits)}`;
}

/** A cost's stages, one per line, for the cell's tooltip. */
function costTitle(byStage: Record<string, number> | null | undefined): string {
  return byStage ? Object.entries(byStage).map(([stage, value]) => `${stage}: ${usd(value)}`).join("\n") : "";
}
