// Human review: the assets the curator sent to a person, and a reviewer's signed decisions.
import { getAddress, type Address, type Hex } from "viem";
import type { ReviewItem } from "../api";
import type { Context } from "../context";
import { actionButton, h, replace } from "../dom";
import { short } from "../format";

function decisionRow(ctx: Context, item: ReviewItem, reviewers: Set<string>, refresh: () => void): HTMLElement {
  const reason = h("input", { type: "text", maxlength: 500, placeholder: "reason (required to reject)", "aria-label": "reason", "data-reason": item.digest });
  const decide = (approve: boolean) =>
    actionButton(
      approve ? "Approve" : "Reject",
      async () => {
        const ok = await ctx.act(approve ? "Approving" : "Rejecting", async (wallet) => {
          const reviewer = getAddress(wallet.account as Address);
          if (!reviewers.has(reviewer)) throw new Error(`${short(reviewer)} is not a reviewer of this deployment`);
          if (!approve && !reason.value.trim()) throw new Error("say why you reject it (reason)");
          const typed = await ctx.api.reviewTypes();
          const deadline = BigInt(Math.floor(Date.now() / 1000) + 600);
          const message = { reviewer, asset: item.digest, approve, reason: reason.value, deadline };
          const signature = await wallet.signReview(typed.domain, message);
          const outcome = await ctx.api.decide(item.digest, { reviewer, approve, reason: reason.value, deadline: Number(deadline), signature });
          return `${short(item.digest)} ${outcome.stage}: ${outcome.reason ?? ""}`;
        });
        if (ok) refresh();
      },
      { class: approve ? "primary" : "warn", "data-action": approve ? "approve" : "reject", "data-digest": item.digest },
    );
  return h(
    "div",
    { class: "card review", "data-digest": item.digest },
    item.cid ? h("img", { src: ctx.api.url(`v1/content/${item.cid}`), alt: item.prompt, width: 160, height: 160 }) : null,
    h("div", { class: "prompt" }, item.prompt),
    h("div", { class: "meta" }, short(item.digest), item.score !== null
        ? ` · head score ${item.score.toFixed(3)}`
        : item.alignment === null
          ? ""
          : ` · alignment ${item.alignment.toFixed(3)}`),
    item.reason ? h("p", { class: "muted" }, item.reason) : null,
    h("div", { class: "row" }, reason, decide(true), decide(false)),
  );
}

export async function reviewPage(ctx: Context, view: HTMLElement, refresh: () => void): Promise<void> {
  const [queue, typed] = await Promise.all([ctx.api.reviewQueue(), ctx.api.reviewTypes()]);
  const reviewers = new Set(typed.reviewers.map((r) => getAddress(r)));
  const account = ctx.wallet()?.account;
  const mine = account ? reviewers.has(getAddress(account)) : false;
  replace(
    view,
    h("section", { class: "intro" },
      h("h1", {}, "Review"),
      h("p", { class: "muted" },
        "Images the curator could not decide: a reviewer approves (the asset is then published, registered and proven) ",
        "or rejects (it ends, with your reason). Your wallet signs each decision (EIP-712, for this deployment only); ",
        "every decision is kept as labelled data for the curation model."),
      h("p", { id: "reviewer-state", "data-reviewer": String(mine) },
        mine ? "You are a reviewer of this deployment." : `Connect a reviewer's wallet to decide (${[...reviewers].map((r) => short(r as Hex)).join(", ") || "none configured"}).`),
    ),
    queue.total === 0
      ? h("p", { class: "empty" }, "Nothing waits for review.")
      : h("p", { class: "muted count" }, `${queue.total} waiting`),
    h("div", { class: "grid", id: "review" }, queue.items.map((item) => decisionRow(ctx, item, reviewers, refresh))),
  );
}
