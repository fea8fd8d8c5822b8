import type { Api, Deployment } from "./api";
import { parseEthInput } from "./format";
import type { Wallet } from "./wallet";

/** What every page gets: the API, the deployment it serves, the wallet (once connected), notices. */
export interface Context {
  api: Api;
  deployment: Deployment;
  wallet(): Wallet | null;
  /** The connected wallet on the right chain, asking the user to connect or switch when needed. */
  requireWallet(): Promise<Wallet>;
  notify(text: string, kind?: "info" | "ok" | "error"): void;
  /** Runs a wallet action with progress and the outcome as a notice; rethrows nothing. */
  act(what: string, action: (wallet: Wallet) => Promise<string>): Promise<boolean>;
}

/** The ETH amount typed in `input`, or null after telling the person what is wrong with it. */
export function typedAmount(ctx: Context, input: HTMLInputElement): bigint | null {
  try {
    return parseEthInput(input.value);
  } catch (error) {
    ctx.notify((error as Error).message, "error");
    return null;
  }
}
