// The user's wallet, through EIP-1193 (found by EIP-6963 announcements, else window.ethereum).
// Reads go through the wallet's provider too, so the page sees the chain the wallet sees.
import {
  BaseError,
  ContractFunctionRevertedError,
  UserRejectedRequestError,
  createPublicClient,
  createWalletClient,
  custom,
  getAddress,
  numberToHex,
  type Address,
  type EIP1193Provider,
  type Hex,
  type PublicClient,
  type TransactionReceipt,
  type WalletClient,
} from "viem";
import type { ContractInfo, Deployment } from "./api";

interface ProviderDetail {
  info: { uuid: string; name: string; icon: string; rdns: string };
  provider: EIP1193Provider;
}

declare global {
  interface Window {
    ethereum?: EIP1193Provider;
  }
}

/** Providers the page can use: those announced by EIP-6963 within `waitMs`, else window.ethereum. */
export async function discover(waitMs = 300): Promise<ProviderDetail[]> {
  const found = new Map<string, ProviderDetail>();
  const listener = (event: Event) => {
    const detail = (event as CustomEvent<ProviderDetail>).detail;
    if (detail?.provider && detail.info?.uuid) found.set(detail.info.uuid, detail);
  };
  window.addEventListener("eip6963:announceProvider", listener);
  window.dispatchEvent(new Event("eip6963:requestProvider"));
  await new Promise((resolve) => setTimeout(resolve, waitMs));
  window.removeEventListener("eip6963:announceProvider", listener);
  if (found.size === 0 && window.ethereum) {
    found.set("injected", {
      info: { uuid: "injected", name: "Browser wallet", icon: "", rdns: "injected" },
      provider: window.ethereum,
    });
  }
  return [...found.values()];
}

/** A failure said so that a person can act on it: the contract's custom error by name, a rejection as such. */
export function describeError(error: unknown): string {
  if (error instanceof BaseError) {
    const reverted = error.walk((e) => e instanceof ContractFunctionRevertedError);
    if (reverted instanceof ContractFunctionRevertedError) {
      const name = reverted.data?.errorName;
      if (name) {
        const args = (reverted.data?.args ?? []).map((a) => String(a)).join(", ");
        return `the contract refused: ${name}(${args})`;
      }
      return `the contract refused: ${reverted.reason ?? reverted.shortMessage}`;
    }
    if (error.walk((e) => e instanceof UserRejectedRequestError)) return "you rejected the request in your wallet";
    return error.shortMessage;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}

export class Wallet {
  account: Address | null = null;
  chainId: number | null = null;
  readonly name: string;
  private readonly wallet: WalletClient;
  readonly reader: PublicClient;
  private listeners: (() => void)[] = [];

  constructor(
    private readonly detail: ProviderDetail,
    private readonly deployment: Deployment,
  ) {
    this.name = detail.info.name;
    const transport = custom(detail.provider);
    this.wallet = createWalletClient({ transport });
    this.reader = createPublicClient({ transport, pollingInterval: 250 });
    const provider = detail.provider as EIP1193Provider & {
      on?: (event: string, handler: (value: unknown) => void) => void;
    };
    provider.on?.("accountsChanged", (accounts) => {
      const list = accounts as string[];
      this.account = list.length ? getAddress(list[0]!) : null;
      this.changed();
    });
    provider.on?.("chainChanged", (chainId) => {
      this.chainId = Number(chainId as string);
      this.changed();
    });
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  get onRightChain(): boolean {
    return this.chainId === this.deployment.chainId;
  }

  /** Asks the wallet for an account (a prompt in MetaMask). */
  async connect(): Promise<Address> {
    const accounts = await this.wallet.requestAddresses();
    if (accounts.length === 0) throw new Error("the wallet gave no account");
    this.account = getAddress(accounts[0]!);
    this.chainId = await this.wallet.getChainId();
    this.changed();
    return this.account;
  }

  /** Asks the wallet to switch to the deployment's chain (adding it when it knows the RPC). */
  async switchChain(): Promise<void> {
    const chainId = numberToHex(this.deployment.chainId);
    try {
      await this.detail.provider.request({ method: "wallet_switchEthereumChain", params: [{ chainId }] });
    } catch (error) {
      const code = (error as { code?: number }).code;
      if (code !== 4902 || !this.deployment.rpcUrl) throw error;
      await this.detail.provider.request({
        method: "wallet_addEthereumChain",
        params: [
          {
            chainId,
            chainName: `proofmint ${this.deployment.network}`,
            nativeCurrency: { name: "Ether", symbol: "ETH", decimals: 18 },
            rpcUrls: [this.deployment.rpcUrl],
          },
        ],
      });
    }
    this.chainId = await this.wallet.getChainId();
    this.changed();
  }

  private ready(): Address {
    if (!this.account) throw new Error("connect a wallet first");
    if (!this.onRightChain) {
      throw new Error(`the wallet is on chain ${this.chainId}; switch it to chain ${this.deployment.chainId}`);
    }
    return this.account;
  }

  /** Runs `functionName` on `contract`: simulated first (a revert is named before any signing), then
   * sent by the wallet and awaited until mined. */
  async send(
    contract: ContractInfo,
    functionName: string,
    args: readonly unknown[],
    value: bigint = 0n,
  ): Promise<TransactionReceipt> {
    const account = this.ready();
    const { request } = await this.reader.simulateContract({
      address: contract.address,
      abi: contract.abi,
      functionName,
      args,
      account,
      value,
    });
    const hash = await this.wallet.writeContract({ ...request, account, chain: null });
    const receipt = await this.reader.waitForTransactionReceipt({ hash, timeout: 120_000 });
    if (receipt.status !== "success") throw new Error(`transaction ${hash} reverted`);
    return receipt;
  }

  /** Signs a review decision with eth_signTypedData_v4 (for the deployment the domain names). */
  async signReview(
    domain: { name: string; version: string; chainId: number; verifyingContract: Address },
    decision: { reviewer: Address; asset: Hex; approve: boolean; reason: string; deadline: bigint },
  ): Promise<Hex> {
    const account = this.ready();
    if (getAddress(decision.reviewer) !== account) throw new Error("a decision is signed by its reviewer");
    return this.wallet.signTypedData({
      account,
      domain,
      types: {
        ReviewDecision: [
          { name: "reviewer", type: "address" },
          { name: "asset", type: "bytes32" },
          { name: "approve", type: "bool" },
          { name: "reason", type: "string" },
          { name: "deadline", type: "uint256" },
        ],
      },
      primaryType: "ReviewDecision",
      message: decision,
    });
  }

  /** Signs a licence voucher with eth_signTypedData_v4 (the wallet shows every field, the service
   * it pays among them). */
  async signVoucher(
    domain: { name: string; version: string; chainId: number; verifyingContract: Address },
    voucher: {
      payer: Address;
      service: Address;
      asset: Hex;
      termsId: bigint;
      cumulativeAmount: bigint;
      deadline: bigint;
    },
  ): Promise<Hex> {
    const account = this.ready();
    if (getAddress(voucher.payer) !== account) throw new Error("a voucher is signed by its payer");
    return this.wallet.signTypedData({
      account,
      domain,
      types: {
        Voucher: [
          { name: "payer", type: "address" },
          { name: "service", type: "address" },
          { name: "asset", type: "bytes32" },
          { name: "termsId", type: "uint256" },
          { name: "cumulativeAmount", type: "uint256" },
          { name: "deadline", type: "uint256" },
        ],
      },
      primaryType: "Voucher",
      message: voucher,
    });
  }
}
