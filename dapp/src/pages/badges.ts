import type { Asset } from "../api";
import { h } from "../dom";

export function zkBadge(asset: Asset): HTMLElement {
  const zk = asset.zk;
  const status = zk.status;
  const text = { attested: "zk attested", unproven: "zk unproven", pending: "zk pending", unknown: "zk unknown" }[status];
  const title =
    zk.status === "attested"
      ? `an EZKL proof of the curation model's inference was verified on chain (model ${zk.modelId ?? "?"}` +
        (zk.verdict ? `, proven verdict ${zk.verdict}` : "") +
        ")"
      : zk.status === "unproven"
        ? `no proof: ${zk.reason ?? "proving failed"}`
        : status === "unknown"
          ? "registered outside these agents: this server does not know of a proof"
          : "the proof is being made";
  return h("span", { class: `badge zk-${status}`, title, "data-badge": "zk" }, text);
}

export function provenanceBadge(): HTMLElement {
  return h(
    "span",
    {
      class: "badge provenance",
      title: "model version, weights digest, prompt, seed, parameters and parents are registered on chain",
      "data-badge": "provenance",
    },
    "provenance on chain",
  );
}

/** What decided the curation: the curation head's score, else the prompt alignment (cosine bands). */
export function alignment(asset: Asset): string | null {
  const curation = asset.curation;
  if (!curation) return null;
  return curation.score === null
    ? `prompt alignment ${curation.alignment.toFixed(2)}`
    : `curation head score ${curation.score.toFixed(2)}`;
}
