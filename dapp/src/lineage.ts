// An asset's lineage as an SVG graph: parents to the left, derivatives to the right, one column
// per generation (longest path from the oldest ancestor shown), each node a link to its asset page.
import type { Hex } from "viem";
import type { LineageGraph } from "./api";
import { short } from "./format";
import { svg } from "./dom";

const NODE_W = 132;
const NODE_H = 124;
const COL_GAP = 72;
const ROW_GAP = 20;
const THUMB = 72;

export function layers(nodes: Hex[], edges: [Hex, Hex][]): Map<Hex, number> {
  const parents = new Map<Hex, Hex[]>(nodes.map((n) => [n, []]));
  for (const [parent, child] of edges) parents.get(child)?.push(parent);
  const layer = new Map<Hex, number>();
  const visiting = new Set<Hex>();
  const depth = (node: Hex): number => {
    const known = layer.get(node);
    if (known !== undefined) return known;
    if (visiting.has(node)) return 0; // a cycle cannot be registered on chain; never loop on bad data
    visiting.add(node);
    const ps = (parents.get(node) ?? []).filter((p) => parents.has(p));
    const value = ps.length === 0 ? 0 : 1 + Math.max(...ps.map(depth));
    visiting.delete(node);
    layer.set(node, value);
    return value;
  };
  for (const node of nodes) depth(node);
  return layer;
}

export function lineageGraph(lineage: LineageGraph, preview: (digest: Hex) => string): SVGSVGElement {
  const ids = lineage.nodes.map((n) => n.digest);
  const layer = layers(ids, lineage.edges);
  const columns = new Map<number, Hex[]>();
  for (const id of ids) {
    const l = layer.get(id) ?? 0;
    columns.set(l, [...(columns.get(l) ?? []), id]);
  }
  const tallest = Math.max(1, ...[...columns.values()].map((c) => c.length));
  const width = columns.size * NODE_W + (columns.size - 1) * COL_GAP + 16;
  const height = tallest * NODE_H + (tallest - 1) * ROW_GAP + 16;
  const at = new Map<Hex, { x: number; y: number }>();
  for (const [l, column] of [...columns.entries()].sort((a, b) => a[0] - b[0])) {
    const offset = ((tallest - column.length) * (NODE_H + ROW_GAP)) / 2;
    column.forEach((id, i) => at.set(id, { x: 8 + l * (NODE_W + COL_GAP), y: 8 + offset + i * (NODE_H + ROW_GAP) }));
  }
  const root = svg("svg", {
    class: "lineage",
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: "img",
    "aria-label": `lineage of ${lineage.root}: ${ids.length} assets, ${lineage.edges.length} links`,
  });
  for (const [parent, child] of lineage.edges) {
    const a = at.get(parent);
    const b = at.get(child);
    if (!a || !b) continue;
    const x1 = a.x + NODE_W;
    const y1 = a.y + NODE_H / 2;
    const x2 = b.x;
    const y2 = b.y + NODE_H / 2;
    const mid = (x1 + x2) / 2;
    root.append(
      svg("path", { class: "edge", d: `M${x1},${y1} C${mid},${y1} ${mid},${y2} ${x2},${y2}`, "data-edge": `${parent}>${child}` }),
    );
  }
  for (const node of lineage.nodes) {
    const p = at.get(node.digest)!;
    const isRoot = node.digest === lineage.root;
    const link = svg(
      "a",
      { href: `#/asset/${node.digest}`, class: isRoot ? "node root" : "node", "data-digest": node.digest },
      svg("rect", { x: p.x, y: p.y, width: NODE_W, height: NODE_H, rx: 8 }),
      node.cid
        ? svg("image", {
            href: preview(node.digest),
            x: p.x + (NODE_W - THUMB) / 2,
            y: p.y + 8,
            width: THUMB,
            height: THUMB,
            preserveAspectRatio: "xMidYMid slice",
          })
        : svg("rect", { class: "noimage", x: p.x + (NODE_W - THUMB) / 2, y: p.y + 8, width: THUMB, height: THUMB, rx: 4 }),
      svg("text", { x: p.x + NODE_W / 2, y: p.y + THUMB + 26, "text-anchor": "middle" }, short(node.digest, 4)),
      svg(
        "text",
        { x: p.x + NODE_W / 2, y: p.y + THUMB + 42, "text-anchor": "middle", class: `zk ${node.zk.status}` },
        node.zk.status === "attested" ? "zk attested" : `zk ${node.zk.status}`,
      ),
      svg("title", {}, node.prompt ?? node.digest),
    );
    root.append(link);
  }
  return root;
}
