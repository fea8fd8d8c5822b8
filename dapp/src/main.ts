// proofmint's dApp: gallery, asset pages (provenance, lineage, licences, pay per use) and a
// dashboard of royalties, for any EIP-1193 wallet. Served by the proofmint API under /app/.
import type { Hex } from "viem";
import { Api, ApiError, type Deployment } from "./api";
import type { Context } from "./context";
import { actionButton, h, replace } from "./dom";
import { short } from "./format";
import { assetPage } from "./pages/asset";
import { dashboard } from "./pages/dashboard";
import { gallery } from "./pages/gallery";
import { reviewPage } from "./pages/review";
import { Wallet, describeError, discover } from "./wallet";

const DIGEST = /^0x[0-9a-fA-F]{64}$/;

class App implements Context {
  private connected: Wallet | null = null;
  private rendering = 0;
  private noticeTimer: number | undefined;

  constructor(
    readonly api: Api,
    readonly deployment: Deployment,
    private readonly view: HTMLElement,
    private readonly walletSlot: HTMLElement,
    private readonly notice: HTMLElement,
  ) {}

  wallet(): Wallet | null {
    return this.connected;
  }

  notify(text: string, kind: "info" | "ok" | "error" = "info"): void {
    this.notice.hidden = false;
    this.notice.className = `notice ${kind}`;
    this.notice.dataset["kind"] = kind;
    this.notice.textContent = text;
    window.clearTimeout(this.noticeTimer);
    if (kind === "ok") this.noticeTimer = window.setTimeout(() => (this.notice.hidden = true), 12_000);
  }

  clearNotice(): void {
    window.clearTimeout(this.noticeTimer);
    this.notice.hidden = true;
    delete this.notice.dataset["kind"];
  }

  async requireWallet(): Promise<Wallet> {
    if (!this.connected) {
      const providers = await discover();
      if (providers.length === 0) {
        throw new Error("no wallet found: install an EIP-1193 wallet such as MetaMask, then reload");
      }
      const wallet = new Wallet(providers[0]!, this.deployment);
      wallet.onChange(() => {
        this.drawWallet();
        void this.render();
      });
      this.connected = wallet;
    }
    if (!this.connected.account) await this.connected.connect();
    if (!this.connected.onRightChain) await this.connected.switchChain();
    return this.connected;
  }

  async act(what: string, action: (wallet: Wallet) => Promise<string>): Promise<boolean> {
    this.notify(`${what}…`);
    try {
      const wallet = await this.requireWallet();
      this.notify(`${what}: confirm in your wallet…`);
      this.notify(await action(wallet), "ok");
      return true;
    } catch (error) {
      this.notify(`${what} failed: ${describeError(error)}`, "error");
      return false;
    }
  }

  drawWallet(): void {
    const w = this.connected;
    if (!w?.account) {
      replace(this.walletSlot, actionButton("Connect wallet", async () => {
        try {
          await this.requireWallet();
        } catch (error) {
          this.notify(`Connecting failed: ${describeError(error)}`, "error");
        }
      }, { class: "primary", id: "connect" }));
      return;
    }
    replace(
      this.walletSlot,
      h("span", { class: "account", id: "account", "data-address": w.account, title: `${w.name}: ${w.account}` }, short(w.account)),
      w.onRightChain
        ? h("span", { class: "chain ok" }, `chain ${w.chainId}`)
        : actionButton(`Switch to chain ${this.deployment.chainId}`, async () => {
            try {
              await w.switchChain();
            } catch (error) {
              this.notify(`Switching failed: ${describeError(error)}`, "error");
            }
          }, { class: "warn" }),
    );
  }

  /** Draws the page the location's hash names; a newer render supersedes one still loading. */
  async render(): Promise<void> {
    const ticket = ++this.rendering;
    const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
    const params = new URLSearchParams(query);
    const parts = (path || "/").split("/").filter(Boolean);
    const target = h("div", { class: "page" });
    const refresh = () => void this.render();
    try {
      if (parts.length === 0) {
        await gallery(this, target, params);
      } else if (parts[0] === "asset" && parts.length === 2 && DIGEST.test(parts[1]!)) {
        await assetPage(this, target, parts[1]!.toLowerCase() as Hex, refresh);
      } else if (parts[0] === "dashboard" && parts.length === 1) {
        await dashboard(this, target, refresh);
      } else if (parts[0] === "review" && parts.length === 1) {
        await reviewPage(this, target, refresh);
      } else {
        replace(target, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/" }, "Back to the gallery")));
      }
    } catch (error) {
      const message = error instanceof ApiError ? `${error.message} (${error.status})` : describeError(error);
      replace(target, h("h1", {}, "Something went wrong"), h("p", { class: "error" }, message), h("p", {}, h("a", { href: "#/" }, "Back to the gallery")));
    }
    if (ticket === this.rendering) {
      replace(this.view, target);
      this.view.dataset["page"] = parts[0] ?? "gallery";
      this.view.dataset["ready"] = String(ticket);
    }
  }
}

async function start(): Promise<void> {
  const view = document.getElementById("view")!;
  const api = new Api(new URL("../", location.href).toString());
  let deployment: Deployment;
  try {
    deployment = await api.deployment();
  } catch (error) {
    replace(view, h("h1", {}, "The proofmint API is not answering"), h("p", { class: "error" }, describeError(error)));
    return;
  }
  const app = new App(api, deployment, view, document.getElementById("wallet")!, document.getElementById("notice")!);
  app.drawWallet();
  window.addEventListener("hashchange", () => {
    app.clearNotice();
    window.scrollTo(0, 0);
    void app.render();
  });
  // A wallet that already granted this page an account reconnects without a prompt.
  const providers = await discover(150);
  if (providers.length > 0) {
    const accounts = (await providers[0]!.provider.request({ method: "eth_accounts" }).catch(() => [])) as string[];
    if (accounts.length > 0) await app.requireWallet().catch(() => undefined);
  }
  app.drawWallet();
  await app.render();
}

void start();
