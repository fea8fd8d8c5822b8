// Builds the dApp (dapp/src, TypeScript and CSS) into dapp/dist with esbuild: one ES module
// (viem included, minified, with a source map), one stylesheet and the page. Nothing is fetched at
// run time: the API serves these files under /app/. Written to a scratch folder, then swapped in.
import { build } from "esbuild";
import { cpSync, existsSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "dapp");
const out = join(root, "dist");
const scratch = join(root, ".dist-building");
rmSync(scratch, { recursive: true, force: true });
mkdirSync(scratch, { recursive: true });
const common = { bundle: true, minify: true, sourcemap: true, logLevel: "warning", outdir: scratch, target: "es2022" };
await build({ ...common, entryPoints: { app: join(root, "src", "main.ts") }, format: "esm", legalComments: "linked" });
await build({ ...common, entryPoints: { app: join(root, "src", "style.css") } });
cpSync(join(root, "index.html"), join(scratch, "index.html"));
const old = join(root, ".dist-old");
rmSync(old, { recursive: true, force: true });
if (existsSync(out)) renameSync(out, old);
renameSync(scratch, out);
rmSync(old, { recursive: true, force: true });
console.log(`[setup] built the dApp into ${out}`);
