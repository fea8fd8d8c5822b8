// The proofmint API, typed as the dApp reads it. The OpenAPI document (/openapi.json) is the reference:
// the interfaces of its component schemas bear their names (Asset, AssetDetail, LineageGraph, Terms, ...).
import type { Abi, Address, Hex } from "viem";

/** Whether an EZKL proof of the curation model's inference on the asset was verified on chain
 * (pending: being proven; unknown: registered outside these agents). */
export type ZkStatus =
  | {
      status: "attested";
      modelId: number | null;
      /** The proven fixed-point score (over 2^13). */
      score: number | null;
      /** What the contract derived from the proven score and the model version's bands. */
      verdict: "accept" | "review" | "reject" | null;
      transaction: Hex | null;
    }
  | { status: "unproven"; reason: string | null }
  | { status: "pending" | "unknown" };

export interface CurationFlag {
  concept: string;
  where: "prompt" | "image";
  similarity: number;
}

/** The curator's verdict. */
export interface Curation {
  decision: "accept" | "review" | "reject";
  /** CLIP similarity of image and prompt. */
  alignment: number;
  /** The curation head's score, which decided (null: cosine bands decided). */
  score: number | null;
  flags: CurationFlag[];
  duplicateOf: Hex | null;
  duplicateSimilarity: number;
}

/** An asset in a list (gallery, search, similar, lineage nodes, children). */
export interface Asset {
  digest: Hex;
  cid: string | null;
  prompt: string | null;
  creator: Address | null;
  requester: string | null;
  seq: number | null;
  width: number | null;
  height: number | null;
  zk: ZkStatus;
  curation: Curation | null;
  /** Made by these agents, or known from the chain only. */
  source: "agents" | "chain";
}

export interface SimilarAsset extends Asset {
  /** Cosine similarity of the CLIP image embeddings, in [-1, 1]. */
  similarity: number;
}

/** What was asked for (the generator used these parameters as given). */
export interface GenerationRequest {
  prompt: string;
  negativePrompt: string;
  seed: number;
  steps: number;
  guidance: number;
  height: number | null;
  width: number | null;
  parents: Hex[];
}

/** What produced the image beyond the request: enough to reproduce it on the same device. */
export interface Lineage {
  /** The registered model version that made it. */
  modelId: number | null;
  modelDigest: string;
  /** The parameters document (the pre-image of paramsDigest) by CID. */
  paramsCid: string | null;
  pipeline: string;
  scheduler: string;
  adapters: string[];
  device: string;
  dtype: string;
  batch: number;
}

/** The asset's registration on chain. */
export interface Registration {
  modelId: number | null;
  transaction: Hex | null;
}

/** The GenerationMarket request the asset fulfils. */
export interface MarketRequest {
  market: Address | null;
  requestId: string;
}

export interface Terms {
  termsId: number;
  asset: Hex;
  currency: Address;
  pricePerUse: string;
  price: string;
  duration: number;
  derivativeRoyaltyBps: number;
  commercialUse: boolean;
  derivativesAllowed: boolean;
  active: boolean;
  /** Terms of an earlier record of the asset (taken over by a batch claim): they sell and license nothing. */
  superseded: boolean;
}

export interface AssetDetail extends Asset {
  metadataCid: string | null;
  manifestCid: string | null;
  metadataURI: string | null;
  request: GenerationRequest | null;
  lineage: Lineage | null;
  parents: Hex[];
  paramsDigest: Hex | null;
  commitment: Hex | null;
  registration: Registration | null;
  marketRequest: MarketRequest | null;
  children: Asset[];
  terms: Terms[];
}

export interface AssetPage {
  total: number;
  offset: number;
  items: Asset[];
}

export interface LineageGraph {
  root: Hex;
  nodes: Asset[];
  edges: [Hex, Hex][];
  truncated: boolean;
}

export interface ContractInfo {
  address: Address;
  abi: Abi;
}

export interface Deployment {
  chainId: number;
  network: string;
  rpcUrl: string | null;
  /** This server's service: the address its vouchers name and payers hold escrow with. */
  service: Address;
  contracts: Record<"LicenseManager" | "RoyaltySplitter" | "ProvenanceRegistry" | "ModelRegistry", ContractInfo>;
}

export interface Licence {
  licenseId: string;
  termsId: number;
  buyer: Address;
  price: string;
  expiresAt: number;
  transaction: Hex;
}

/** A payer's escrow with one service (LicenseManager keeps one per payer, currency and service). */
export interface Escrow {
  payer: Address;
  currency: Address;
  service: Address;
  balance: string;
  pendingWithdrawal: string;
  /** When the pending withdrawal may be withdrawn (0: none pending). */
  unlockAt: number;
  /** When the pending withdrawal expires unwithdrawn (0: none pending); then request again. */
  expiresAt: number;
  /** Where the request stands by the chain's clock. */
  withdrawal: "none" | "waiting" | "withdrawable" | "expired";
  /** Vouchers this server accepted and the chain has not settled yet. */
  promised: string;
}

export interface Channel {
  payer: Address;
  service: Address;
  termsId: number;
  acceptedCumulative: string;
  settled: string;
}

export interface Owed {
  account: Address;
  currency: Address;
  balance: string;
  assets: {
    digest: Hex;
    prompt: string | null;
    pendingRevenue: string;
    distributed: string;
    /** What making it cost the operator (compute, gas, storage, proof), US dollars; null where this server did not make it. */
    costUsd?: number | null;
    costByStage?: Record<string, number> | null;
    /** What it earned (split and waiting), US dollars at the operator's ether price; null for a token. */
    revenueUsd?: number | null;
    marginUsd?: number | null;
  }[];
  models: { modelId: number; developerBps: number; dataBps: number }[];
  dataShares: { modelId: number; weight: number; proof: Hex[]; claimable: string; claimed: string }[];
}

export interface X402Offer {
  scheme: string;
  network: string;
  amount: string;
  asset: Address;
  payTo: Address;
  extra: {
    assetDigest: Hex;
    termsId: number;
    pricePerUse: string;
    /** The service the voucher must name (also `payTo`). */
    service: Address;
    settlementContract: Address;
    chainId: number;
    minDeadlineSeconds: number;
    eip712: { domain: { name: string; version: string; chainId: number; verifyingContract: Address } };
  };
}

/** What the creator asks `POST /v1/derivatives` to draft (one licence id per parent, same order). */
export interface DerivativeRequest {
  creator: Address;
  modelId: number;
  parents: Hex[];
  licenseIds: string[];
  /** The image file in base64 (at most 40 KiB through the API). */
  image: string;
  title?: string;
}

/** `ProvenanceRegistry.register(input, licenseIds)`, simulated as the creator; the wallet sends it. */
export interface DerivativeDraft {
  digest: Hex;
  cid: string;
  paramsCid: string;
  metadataCid: string;
  paramsDigest: Hex;
  input: {
    contentDigest: Hex;
    creator: Address;
    modelId: number;
    paramsDigest: Hex;
    inputCommitment: Hex;
    parents: Hex[];
    metadataURI: string;
  };
  licenseIds: string[];
  transaction: { from: Address; to: Address; data: Hex };
}

/** An asset the curator sent to a person. */
export interface ReviewItem {
  key: string;
  digest: Hex;
  prompt: string;
  seed: number;
  alignment: number | null;
  /** The curation head's score (null: cosine bands decided). */
  score: number | null;
  reason: string | null;
  cid: string | null;
  createdAt: number;
}

export interface ReviewTypes {
  domain: { name: string; version: string; chainId: number; verifyingContract: Address };
  primaryType: "ReviewDecision";
  reviewers: Address[];
}

/** An error the API answered, in its one JSON shape ({"error": {status, code, message, details}}). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }
}

async function errorOf(response: Response): Promise<ApiError> {
  try {
    const body = (await response.json()) as { error?: { code?: string; message?: string; details?: Record<string, unknown> } };
    const e = body.error ?? {};
    return new ApiError(response.status, e.code ?? "error", e.message ?? response.statusText, e.details ?? {});
  } catch {
    return new ApiError(response.status, "error", `${response.status} ${response.statusText}`);
  }
}

export class Api {
  constructor(private readonly base: string) {}

  url(path: string): string {
    return new URL(path.replace(/^\//, ""), this.base).toString();
  }

  async get<T>(path: string): Promise<T> {
    const response = await fetch(this.url(path), { headers: { Accept: "application/json" } });
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const response = await fetch(this.url(path), {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw await errorOf(response);
    return (await response.json()) as T;
  }

  /** Stores a derivative's image, parameters and metadata and drafts its registration (422
   * `would_revert` names the contract's error when the registry would refuse it). */
  draftDerivative(request: DerivativeRequest): Promise<DerivativeDraft> {
    return this.post("v1/derivatives", request);
  }

  /** The same request once the derivative is registered as drafted: the API keeps its files. */
  keepDerivative(request: DerivativeRequest): Promise<{ digest: Hex; stored: boolean; metadataCid: string }> {
    return this.post("v1/derivatives", request);
  }

  reviewQueue(limit = 60): Promise<{ total: number; offset: number; items: ReviewItem[] }> {
    return this.get(`v1/review?limit=${limit}`);
  }

  reviewTypes(): Promise<ReviewTypes> {
    return this.get("v1/review/eip712");
  }

  decide(
    digest: Hex,
    decision: { reviewer: Address; approve: boolean; reason: string; deadline: number; signature: Hex },
  ): Promise<{ key: string; stage: string; reason: string | null }> {
    return this.post(`v1/review/${digest}`, decision);
  }

  deployment(): Promise<Deployment> {
    return this.get("v1/deployment");
  }

  assets(q = "", limit = 60, offset = 0): Promise<AssetPage> {
    const params = new URLSearchParams({ limit: String(limit), offset: String(offset) });
    if (q) params.set("q", q);
    return this.get(`v1/assets?${params}`);
  }

  asset(digest: Hex): Promise<AssetDetail> {
    return this.get(`v1/assets/${digest}`);
  }

  lineage(digest: Hex, depth = 3): Promise<LineageGraph> {
    return this.get(`v1/assets/${digest}/lineage?depth=${depth}`);
  }

  similar(digest: Hex, limit = 6): Promise<{ items: SimilarAsset[] }> {
    return this.get(`v1/assets/${digest}/similar?limit=${limit}`);
  }

  previewUrl(digest: Hex): string {
    return this.url(`v1/assets/${digest}/preview`);
  }

  licences(holder: Address): Promise<{ holder: Address; items: Licence[] }> {
    return this.get(`v1/holders/${holder}/licences`);
  }

  /** The payer's escrow with `service` (default: this server's). */
  escrow(payer: Address, service?: Address): Promise<Escrow> {
    return this.get(`v1/holders/${payer}/escrow${service ? `?service=${service}` : ""}`);
  }

  channel(payer: Address, termsId: number): Promise<Channel> {
    return this.get(`v1/channels/${payer}/${termsId}`);
  }

  owed(account: Address): Promise<Owed> {
    return this.get(`v1/accounts/${account}/owed`);
  }

  /** The licensed content of an asset: the 402 offer when unpaid, the image when `payment` is accepted. */
  async content(digest: Hex, payment?: string): Promise<{ image: Blob } | { offers: X402Offer[]; error: ApiError }> {
    const headers: Record<string, string> = {};
    if (payment) headers["PAYMENT-SIGNATURE"] = payment;
    const response = await fetch(this.url(`v1/assets/${digest}/content`), { headers });
    if (response.ok) return { image: await response.blob() };
    const error = await errorOf(response);
    if (response.status !== 402) throw error;
    const header = response.headers.get("PAYMENT-REQUIRED");
    const required = header ? (JSON.parse(atob(header)) as { accepts?: X402Offer[] }) : {};
    return { offers: required.accepts ?? [], error };
  }
}
