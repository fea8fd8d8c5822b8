#!/usr/bin/env node
// A native-solc-compatible command line over solc-js (the official emscripten build).
//
// py-solc-x (and so ape-solidity) drives a solc executable through two calls only:
//   solc --version
//   solc --standard-json [--base-path DIR] [--include-path DIR]... [--allow-paths A,B]  < input.json
// This script answers both with the same output shape as native solc, so `ape compile`
// works with no network. Imports are resolved as native solc does with those flags:
// relative to the base path, then to each include path; nothing outside them is read.
//
// Limits: only those calls are supported; anything else exits 2 with a message.
"use strict";

const fs = require("fs");
const path = require("path");

function fail(message, code) {
  fs.writeSync(2, `solc-js wrapper: ${message}\n`);
  process.exit(code);
}

function loadSolc() {
  const dir = path.join(__dirname, "..", "node_modules", "solc");
  if (!fs.existsSync(path.join(dir, "soljson.js"))) {
    fail(`solc-js not found in ${dir}; run 'npm ci' in the project root`, 3);
  }
  const solc = require(dir);
  // Emscripten installs an uncaughtException handler that swallows errors; drop it.
  process.removeAllListeners("uncaughtException");
  return solc;
}

function parseArgs(argv) {
  const opts = { version: false, standardJson: false, basePath: null, includePaths: [], allowPaths: [] };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const takeValue = () => {
      if (i + 1 >= argv.length) fail(`${arg} needs a value`, 2);
      return argv[++i];
    };
    const eq = arg.indexOf("=");
    const [flag, inline] = arg.startsWith("--") && eq > 0 ? [arg.slice(0, eq), arg.slice(eq + 1)] : [arg, null];
    const value = () => (inline !== null ? inline : takeValue());
    switch (flag) {
      case "--version":
        opts.version = true;
        break;
      case "--standard-json":
        opts.standardJson = true;
        break;
      case "--base-path":
        opts.basePath = value();
        break;
      case "--include-path":
        opts.includePaths.push(value());
        break;
      case "--allow-paths":
        opts.allowPaths.push(...value().split(",").filter(Boolean));
        break;
      case "-":
        break;
      default:
        fail(`unsupported argument '${arg}': only --version and --standard-json are provided`, 2);
    }
  }
  return opts;
}

function makeImportCallback(opts) {
  const roots = [opts.basePath || process.cwd(), ...opts.includePaths].map((p) => path.resolve(p));
  const allowed = [...roots, ...opts.allowPaths.map((p) => path.resolve(p))];
  const inside = (file) => allowed.some((root) => file === root || file.startsWith(root + path.sep));
  return (importPath) => {
    const candidates = path.isAbsolute(importPath)
      ? [path.resolve(importPath)]
      : roots.map((root) => path.resolve(root, importPath));
    for (const file of candidates) {
      if (!inside(file)) continue;
      if (fs.existsSync(file) && fs.statSync(file).isFile()) {
        return { contents: fs.readFileSync(file, "utf8") };
      }
    }
    return { error: `File not found inside the base path or any of the include paths: ${importPath}` };
  };
}

function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (opts.version) {
    const solc = loadSolc();
    fs.writeSync(1, `solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
    return;
  }
  if (!opts.standardJson) fail("nothing to do: pass --version or --standard-json", 2);
  const input = fs.readFileSync(0, "utf8");
  try {
    JSON.parse(input);
  } catch (err) {
    // Native solc answers bad JSON with a JSON error object, exit 0; do the same.
    const out = { errors: [{ component: "general", formattedMessage: `Error: ${err.message}`, message: err.message, severity: "error", type: "JSONError" }] };
    fs.writeSync(1, JSON.stringify(out));
    return;
  }
  const solc = loadSolc();
  const output = solc.compile(input, { import: makeImportCallback(opts) });
  // process.stdout.write on a pipe is asynchronous and may be cut by exit: write synchronously.
  const buf = Buffer.from(output, "utf8");
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(1, buf, off, buf.length - off);
    } catch (err) {
      if (err.code !== "EAGAIN") throw err;
    }
  }
}

main();
