import { formatEther, formatUnits } from "viem";

export const ETH = "0x0000000000000000000000000000000000000000";

export function short(hex: string, keep = 6): string {
  return hex.length <= 2 + 2 * keep ? hex : `${hex.slice(0, 2 + keep)}…${hex.slice(-4)}`;
}

/** An amount in the smallest unit of `currency` as text ("0.0015 ETH"). */
export function amount(wei: bigint | string, currency: string = ETH): string {
  const value = typeof wei === "bigint" ? wei : BigInt(wei);
  if (currency.toLowerCase() === ETH) return `${trim(formatEther(value))} ETH`;
  return `${trim(formatUnits(value, 18))} ${short(currency, 4)}`;
}

function trim(text: string): string {
  return text.includes(".") ? text.replace(/0+$/, "").replace(/\.$/, "") : text;
}

export function duration(seconds: number): string {
  if (seconds === 0) return "perpetual";
  const days = seconds / 86_400;
  if (days >= 1 && Number.isInteger(days)) return `${days} day${days === 1 ? "" : "s"}`;
  const hours = seconds / 3_600;
  if (hours >= 1 && Number.isInteger(hours)) return `${hours} h`;
  return `${seconds} s`;
}

/** `expiresAt` of a licence that never expires (ERC-1155 licences of perpetual terms). */
export const PERPETUAL = 2n ** 64n - 1n;

/** Whether `expiresAt` (unix seconds, as JSON gives it: a number, so 2^64 - 1 arrives rounded)
 * means never. */
export function perpetual(expiresAt: number): boolean {
  return expiresAt >= Number(PERPETUAL);
}

/** Whether a licence expiring at `expiresAt` (unix seconds) is still valid at `now`. */
export function stillValid(expiresAt: number, now: number = Date.now() / 1000): boolean {
  return perpetual(expiresAt) || expiresAt > now;
}

export function when(unixSeconds: number): string {
  if (unixSeconds === 0) return "never";
  return new Date(unixSeconds * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
}

/** Parses an ETH amount typed by a person ("0.01"); throws with a message a person can act on. */
export function parseEthInput(text: string): bigint {
  const t = text.trim();
  if (!/^\d+(\.\d{1,18})?$/.test(t)) throw new Error("enter an amount in ETH, such as 0.01");
  const [whole, frac = ""] = t.split(".");
  const wei = BigInt(whole!) * 10n ** 18n + BigInt((frac + "0".repeat(18)).slice(0, 18));
  if (wei === 0n) throw new Error("the amount must be more than zero");
  return wei;
}
