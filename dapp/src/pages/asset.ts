import { getAddress, type Address, type Hex } from "viem";
import type { AssetDetail, Licence, Terms, X402Offer } from "../api";
import { typedAmount, type Context } from "../context";
import { actionButton, h, replace, type Child } from "../dom";
import { amount, duration, ETH, short, stillValid } from "../format";
import { lineageGraph } from "../lineage";
import { alignment, provenanceBadge, zkBadge } from "./badges";


function row(label: string, value: Child): HTMLElement {
  return h("tr", {}, h("th", { scope: "row" }, label), h("td", {}, value));
}

function mono(text: string | null | undefined): Child {
  return text ? h("code", { title: text }, text) : h("span", { class: "muted" }, "—");
}

/** A fact of the provenance table: absent (not shown), or what to show. */
type Fact = string | number | string[] | null | undefined;

function text(value: Fact): string | null {
  if (value === undefined || value === null || value === "") return null;
  if (Array.isArray(value)) return value.length ? value.join(", ") : null;
  return String(value);
}

function provenance(asset: AssetDetail): HTMLElement {
  const { request, lineage, registration } = asset;
  const rows: HTMLElement[] = [
    row("Asset digest (sha-256)", mono(asset.digest)),
    row("Content (CIDv1)", mono(asset.cid)),
    row("Creator", mono(asset.creator)),
  ];
  const facts: [string, Fact, boolean][] = [
    ["Prompt", asset.prompt ?? request?.prompt, false],
    ["Negative prompt", request?.negativePrompt, false],
    ["Seed", request?.seed, false],
    ["Steps", request?.steps, false],
    ["Guidance", request?.guidance, false],
    ["Model version (on chain)", registration?.modelId, false],
    ["Weights digest", lineage?.modelDigest, true],
    ["Pipeline", lineage?.pipeline, false],
    ["Scheduler", lineage?.scheduler, false],
    ["Adapters", lineage?.adapters, false],
    ["Ran on", lineage ? [lineage.device, lineage.dtype].filter((v) => v).join(", ") : null, false],
    ["Registered in transaction", registration?.transaction, true],
  ];
  for (const [label, value, code] of facts) {
    const shown = text(value);
    if (shown !== null) rows.push(row(label, code ? mono(shown) : shown));
  }
  rows.push(
    row("Parameters digest", mono(asset.paramsDigest)),
    row("Parameters document (sha-256 = parameters digest)", mono(lineage?.paramsCid)),
    row("Input commitment (Poseidon)", mono(asset.commitment)),
    row("Metadata", mono(asset.metadataCid)),
    row("Provenance manifest (C2PA vocabulary)", mono(asset.manifestCid)),
    row("Parents", asset.parents.length ? h("span", {}, asset.parents.map((p) => h("a", { href: `#/asset/${p}` }, short(p), " "))) : "none (an original)"),
  );
  const zk = asset.zk;
  rows.push(
    row(
      "Zero-knowledge proof",
      zk.status === "attested"
        ? h("span", {}, `EZKL proof of the curation model (version ${zk.modelId ?? "?"}) verified on chain in `, mono(zk.transaction ?? null))
        : zk.status === "unproven"
          ? `not proven: ${zk.reason ?? "proving failed"}`
          : zk.status === "unknown"
            ? "not known here (registered outside these agents)"
            : "pending",
    ),
  );
  return h("table", { class: "facts", id: "provenance" }, h("tbody", {}, rows));
}

function termsFacts(t: Terms): string {
  const parts = [
    t.commercialUse ? "commercial use" : "non-commercial",
    t.derivativesAllowed ? `derivatives allowed (${t.derivativeRoyaltyBps / 100}% royalty to this asset)` : "no derivatives",
    `licence ${duration(t.duration)}`,
  ];
  return parts.join(" · ");
}

async function heldLicences(ctx: Context, terms: Terms[]): Promise<Map<number, number>> {
  const wallet = ctx.wallet();
  const held = new Map<number, number>();
  if (!wallet?.account) return held;
  const ids = new Set(terms.map((t) => t.termsId));
  const now = Date.now() / 1000;
  for (const licence of (await ctx.api.licences(wallet.account)).items) {
    if (ids.has(licence.termsId) && stillValid(licence.expiresAt, now)) {
      held.set(licence.termsId, (held.get(licence.termsId) ?? 0) + 1);
    }
  }
  return held;
}

function purchasePanel(ctx: Context, t: Terms, held: number, refresh: () => void): HTMLElement {
  const lm = ctx.deployment.contracts.LicenseManager;
  const price = BigInt(t.price);
  const buy = actionButton(
    price === 0n ? "Get licence (free)" : `Buy licence for ${amount(price, t.currency)}`,
    async () => {
      const ok = await ctx.act("Buying the licence", async (wallet) => {
        if (t.currency.toLowerCase() !== ETH) throw new Error("this page pays in ETH only; these terms are in a token");
        const receipt = await wallet.send(lm, "purchase", [BigInt(t.termsId), wallet.account], price);
        return `Licence under terms ${t.termsId} bought (block ${receipt.blockNumber}, ${short(receipt.transactionHash)})`;
      });
      if (ok) refresh();
    },
    { class: "primary", "data-action": "purchase", "data-terms": t.termsId, disabled: !t.active || t.superseded },
  );
  return h(
    "div",
    { class: "terms", "data-terms": t.termsId },
    h("h3", {}, `Terms ${t.termsId}`, t.superseded ? " (superseded)" : t.active ? "" : " (inactive)"),
    h("p", {}, termsFacts(t)),
    h("p", {}, price > 0n || BigInt(t.pricePerUse) === 0n ? buy : null),
    BigInt(t.pricePerUse) > 0n ? h("p", { class: "muted" }, `or pay per use: ${amount(t.pricePerUse, t.currency)} a view, from escrow`) : null,
    held > 0 ? h("p", { class: "held", "data-held": held }, `You hold ${held} licence${held === 1 ? "" : "s"} under these terms.`) : null,
  );
}

function header(payment: object): string {
  return btoa(JSON.stringify(payment));
}

/** Pays one use over x402: the 402 offer, the channel's accepted amount, a voucher signed in the wallet. */
async function payPerUse(ctx: Context, asset: AssetDetail, t: Terms, out: HTMLElement): Promise<void> {
  await ctx.act("Paying for one use", async (wallet) => {
    const payer = wallet.account as Address;
    const first = await ctx.api.content(asset.digest);
    let offer: X402Offer | undefined;
    if ("image" in first) {
      show(out, first.image, "free content");
      return "This content is free";
    }
    offer = first.offers.find((o) => o.scheme === "proofmint-voucher" && o.extra.termsId === t.termsId);
    if (!offer) throw new Error(`the API offers no per-use payment under terms ${t.termsId}`);
    if (offer.extra.chainId !== ctx.deployment.chainId) throw new Error("the offer is for another chain");
    // the voucher pays the service the offer names, which is the one this server says it is
    const service = getAddress(offer.payTo);
    if (getAddress(offer.extra.service) !== service || service !== getAddress(ctx.deployment.service)) {
      throw new Error(`the offer pays ${offer.payTo}, not this server's service ${ctx.deployment.service}`);
    }
    const channel = await ctx.api.channel(payer, t.termsId);
    const cumulative = BigInt(channel.acceptedCumulative) + BigInt(offer.amount);
    const deadline = BigInt(Math.floor(Date.now() / 1000) + Math.max(3_600, offer.extra.minDeadlineSeconds + 60));
    const voucher = {
      payer,
      service,
      asset: asset.digest,
      termsId: BigInt(t.termsId),
      cumulativeAmount: cumulative,
      deadline,
    };
    const signature = await wallet.signVoucher(offer.extra.eip712.domain, voucher);
    const payload = {
      payer,
      service,
      asset: asset.digest,
      termsId: t.termsId,
      cumulativeAmount: cumulative.toString(),
      deadline: Number(deadline),
      signature,
    };
    const paid = await ctx.api.content(asset.digest, header({ x402Version: 2, accepted: offer, payload }));
    if (!("image" in paid)) throw new Error(`payment refused: ${paid.error.message}`);
    show(out, paid.image, `paid ${amount(offer.amount)}; this channel's vouchers now total ${amount(cumulative)}`);
    return `One use paid: voucher for ${amount(cumulative)} in total signed and accepted`;
  });
}

function show(out: HTMLElement, image: Blob, caption: string): void {
  const url = URL.createObjectURL(image);
  replace(out, h("figure", { class: "licensed" }, h("img", { src: url, alt: "licensed image", id: "licensed-image" }), h("figcaption", {}, caption)));
}

async function escrowPanel(ctx: Context, asset: AssetDetail, metered: Terms[], refresh: () => void): Promise<HTMLElement> {
  const wallet = ctx.wallet();
  const service = ctx.deployment.service;
  const out = h("div", { class: "paid-out", id: "paid-content" });
  const input = h("input", { type: "text", inputmode: "decimal", value: "0.01", "aria-label": "amount to deposit in ETH", id: "deposit-amount" });
  const deposit = actionButton(
    "Deposit",
    async () => {
      const wei = typedAmount(ctx, input);
      if (wei === null) return;
      const ok = await ctx.act("Depositing into escrow", async (w) => {
        const receipt = await w.send(ctx.deployment.contracts.LicenseManager, "deposit", [ETH, service, wei], wei);
        return `Deposited ${amount(wei)} into escrow with service ${short(service)} (block ${receipt.blockNumber})`;
      });
      if (ok) refresh();
    },
    { "data-action": "deposit" },
  );
  let cover: Child = h("span", { class: "muted" }, "connect a wallet to see your escrow");
  if (wallet?.account) {
    const e = await ctx.api.escrow(wallet.account);
    const free = BigInt(e.balance) - BigInt(e.pendingWithdrawal);
    const promised = BigInt(e.promised);
    const left = free - promised;
    cover = h(
      "span",
      { id: "escrow-balance", "data-wei": e.balance, "data-promised": e.promised },
      `Your escrow with this service: ${amount(e.balance)}`,
      BigInt(e.pendingWithdrawal) > 0n ? `, of which ${amount(e.pendingWithdrawal)} is asked back (counted as gone)` : "",
      promised > 0n ? `; ${amount(promised)} promised in vouchers not yet settled` : "",
      ` · ${amount(left > 0n ? left : 0n)} left for more uses`,
    );
  }
  return h(
    "section",
    { class: "panel", id: "pay-per-use" },
    h("h2", {}, "Pay per use"),
    h("p", { class: "muted" },
      "Each view is paid by a signed cumulative voucher (EIP-712) against ETH you hold in escrow in LicenseManager ",
      "with this server's service, ", h("code", { id: "service", title: service }, short(service)),
      " (only vouchers naming it draw on that escrow); ",
      "the operator settles vouchers on chain in batches. Your wallet shows every field before you sign."),
    h("p", {}, cover),
    h("div", { class: "row" }, input, deposit),
    h("div", { class: "row" },
      metered.map((t) =>
        actionButton(`Sign a voucher and view (${amount(t.pricePerUse, t.currency)}, terms ${t.termsId})`, () => payPerUse(ctx, asset, t, out), {
          class: "primary",
          "data-action": "pay-per-use",
          "data-terms": t.termsId,
        }),
      )),
    out,
  );
}

/** The most the page uploads (the API takes a JSON body of at most 64 KiB). */
const MAX_DERIVATIVE_BYTES = 40 * 1024;

function base64(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}

/** Licences of this asset the connected account holds now (balance on chain), under terms that allow derivatives. */
async function derivableLicences(ctx: Context, asset: AssetDetail): Promise<Licence[]> {
  const wallet = ctx.wallet();
  const open = new Set(asset.terms.filter((t) => t.derivativesAllowed && !t.superseded).map((t) => t.termsId));
  if (!wallet?.account || open.size === 0) return [];
  const account = wallet.account;
  const lm = ctx.deployment.contracts.LicenseManager;
  const bought = (await ctx.api.licences(account)).items.filter((l) => open.has(l.termsId) && stillValid(l.expiresAt));
  const unique = [...new Map(bought.map((l) => [l.licenseId, l])).values()];
  const balances = await Promise.all(
    unique.map((l) =>
      wallet.reader.readContract({ address: lm.address, abi: lm.abi, functionName: "balanceOf", args: [account, BigInt(l.licenseId)] }),
    ),
  );
  return unique.filter((_, i) => (balances[i] as bigint) > 0n);
}

/** Register an image made from this asset as its derivative, under a licence the account holds:
 * the API stores it and drafts the registration, the wallet simulates and sends it. */
async function derivativePanel(ctx: Context, asset: AssetDetail, refresh: () => void): Promise<HTMLElement | null> {
  const licences = await derivableLicences(ctx, asset);
  if (licences.length === 0) return null;
  const licence = licences[0];
  const file = h("input", { type: "file", accept: "image/png,image/jpeg,image/webp", id: "derivative-file", "aria-label": "the derivative's image file" });
  const title = h("input", { type: "text", id: "derivative-title", maxlength: 200, placeholder: "title (optional)", "aria-label": "title" });
  const model = h("input", { type: "number", min: 1, id: "derivative-model", value: String(asset.registration?.modelId ?? 1), "aria-label": "model version used" });
  const register = actionButton(
    "Register derivative",
    async () => {
      let made: Hex | null = null;
      const ok = await ctx.act("Registering the derivative", async (wallet) => {
        const chosen = file.files?.[0];
        if (!chosen) throw new Error("choose the image file of your derivative first");
        if (chosen.size > MAX_DERIVATIVE_BYTES) {
          throw new Error(`the image is ${chosen.size} bytes; this page takes at most 40 KiB (use ape run register_asset for larger files)`);
        }
        const modelId = Number(model.value);
        if (!Number.isInteger(modelId) || modelId < 1) throw new Error("the model version is a whole number, 1 or more");
        const request = {
          creator: wallet.account as Address,
          modelId,
          parents: [asset.digest],
          licenseIds: [licence.licenseId],
          image: base64(new Uint8Array(await chosen.arrayBuffer())),
          title: title.value,
        };
        const draft = await ctx.api.draftDerivative(request);
        const i = draft.input;
        const record = { ...i, modelId: BigInt(i.modelId) };
        const receipt = await wallet.send(ctx.deployment.contracts.ProvenanceRegistry, "register", [record, draft.licenseIds.map((id) => BigInt(id))]);
        await ctx.api.keepDerivative(request); // registered as drafted: the API now keeps its files
        made = draft.digest;
        return `Derivative ${short(draft.digest)} registered under licence ${short(licence.licenseId)} (block ${receipt.blockNumber})`;
      });
      if (ok && made) {
        // the new asset's page (its lineage, from the chain), keeping the notice that says what happened
        history.pushState(null, "", `#/asset/${made}`);
        refresh();
      }
    },
    { class: "primary", "data-action": "register-derivative" },
  );
  return h(
    "section",
    { class: "panel", id: "derivative" },
    h("h2", {}, "Register a derivative"),
    h("p", { class: "muted" },
      `You hold a licence of this asset that allows derivatives (terms ${licence.termsId}). Register an image you made from it: `,
      "your wallet signs the registration, and once it is on chain the image, its parameters and metadata are kept here by content address; ",
      "which uses one unit of the licence. The registry checks the licence itself; a refusal is named before you sign."),
    h("div", { class: "row" }, file, title, model, register),
  );
}

export async function assetPage(ctx: Context, view: HTMLElement, digest: Hex, refresh: () => void): Promise<void> {
  const [asset, lineage] = await Promise.all([ctx.api.asset(digest), ctx.api.lineage(digest)]);
  const held = await heldLicences(ctx, asset.terms);
  const metered = asset.terms.filter((t) => t.active && !t.superseded && BigInt(t.pricePerUse) > 0n);
  const similar = await ctx.api.similar(digest).catch(() => ({ items: [] }));
  const score = alignment(asset);
  replace(
    view,
    h("article", { class: "asset", "data-digest": asset.digest },
      h("div", { class: "hero" },
        asset.cid
          ? h("img", { src: ctx.api.previewUrl(digest), alt: asset.prompt ?? "generated image", class: "preview", width: 256, height: 256 })
          : h("div", { class: "preview none" }, "no image on this server"),
        h("div", {},
          h("h1", {}, asset.prompt ?? `Asset ${short(asset.digest)}`),
          h("div", { class: "badges" }, provenanceBadge(), zkBadge(asset)),
          h("p", { class: "muted" },
            [score, asset.width ? `${asset.width}×${asset.height} px` : null, asset.cid ? "the preview is reduced; the full image is licensed" : "registered on chain by someone else"]
              .filter((x) => x)
              .join(" · ")),
        ),
      ),
      h("section", { class: "panel" }, h("h2", {}, "Provenance"), provenance(asset)),
      h("section", { class: "panel", id: "lineage" },
        h("h2", {}, "Lineage"),
        lineage.edges.length === 0
          ? h("p", { class: "muted" }, "No parents or derivatives registered.")
          : h("p", { class: "muted" }, "Parents on the left, derivatives on the right; select an asset to open it."),
        h("div", { class: "graph" }, lineageGraph(lineage, (d) => ctx.api.previewUrl(d))),
        lineage.truncated ? h("p", { class: "muted" }, "Only the nearest generations are shown.") : null,
      ),
      h("section", { class: "panel", id: "licences" },
        h("h2", {}, "Licences"),
        asset.terms.length === 0
          ? h("p", { class: "muted" }, "The creator has attached no licence terms to this asset.")
          : asset.terms.map((t) => purchasePanel(ctx, t, held.get(t.termsId) ?? 0, refresh)),
      ),
      metered.length ? await escrowPanel(ctx, asset, metered, refresh) : null,
      await derivativePanel(ctx, asset, refresh),
      similar.items.length
        ? h("section", { class: "panel" },
            h("h2", {}, "Similar images"),
            h("div", { class: "strip" },
              similar.items.map((s) =>
                h("a", { href: `#/asset/${s.digest}`, title: `${s.prompt ?? ""} (similarity ${s.similarity.toFixed(2)})` },
                  h("img", { src: ctx.api.previewUrl(s.digest as Hex), alt: s.prompt ?? "", width: 96, height: 96, loading: "lazy" }))),
            ))
        : null,
    ),
  );
}
