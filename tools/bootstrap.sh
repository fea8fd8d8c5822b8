#!/usr/bin/env bash
# Install everything proofmint needs on this machine, idempotently:
#   Debian packages (only what is missing), the Python venv (.venv, pinned by requirements.lock),
#   the npm packages (node_modules, pinned by package-lock.json), the dApp's bundle (dapp/dist),
#   Chromium for the browser tests, and the Solidity compiler that
#   ape uses (native solc 0.8.28 when one is on PATH, else solc-js behind a native-style CLI).
# A second run with nothing changed does no installing and takes a few seconds.
# Nothing here downloads from anywhere but the package registries (PyPI, Debian, npm).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SOLC_VERSION=0.8.28
PIP_VERSION=26.3
VENV="$ROOT/.venv"
SOLC_DIR="${SOLCX_BINARY_PATH:-$ROOT/.cache/solcx}"

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }
digest() { cat "$@" | sha256sum | cut -d' ' -f1; }
# pip warns once per line of this machine's pip.conf find-links that is not a folder: drop that noise.
venv_pip() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@" 2> >(grep -v "is ignored: it is neither" >&2); }

APT_UPDATED=0
apt_install() {
  # Install Debian packages by name, or say exactly what to install when we cannot.
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    die "missing system packages: ${missing[*]}. Install them (Debian/Ubuntu: sudo apt-get install ${missing[*]}) and run again."
  fi
  say "installing Debian packages: ${missing[*]}"
  if [ $APT_UPDATED -eq 0 ]; then apt-get update -qq >/dev/null; APT_UPDATED=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

setup_system() {
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    apt_install nodejs npm
  fi
  command -v node >/dev/null || die "Node.js not found: install Node.js >= 18 with npm (Debian: apt-get install nodejs npm)"
  command -v npm >/dev/null || die "npm not found: install npm (Debian: apt-get install npm)"
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 18 ] || die "Node.js $(node --version) is too old: install Node.js >= 18"
  # Redis backs the shared work queues (agents/runtime/redis_queue.py); tests start their own server.
  command -v redis-server >/dev/null || apt_install redis-server
  command -v redis-server >/dev/null || die "redis-server not found: install it (Debian: apt-get install redis-server)"
  # zkml/native/poseidon.c (input commitments, six times faster than ezkl's binding) is compiled on first use.
  command -v cc >/dev/null || command -v gcc >/dev/null || apt_install gcc libc6-dev
  command -v cc >/dev/null || command -v gcc >/dev/null || die "no C compiler found: install gcc (Debian: apt-get install gcc)"
  if [ "$FOR_TESTS" -eq 1 ]; then
    # The journal's PostgreSQL backend is tested against a real server the tests start (tests/pg_support.py).
    if ! command -v initdb >/dev/null && ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
      apt_install postgresql
    fi
    command -v initdb >/dev/null || compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null \
      || die "PostgreSQL not found: install it (Debian: apt-get install postgresql)"
    # The dApp's end-to-end tests drive Debian's Chromium (never a browser a tool downloads).
    [ -x "${PROOFMINT_CHROMIUM:-/usr/bin/chromium}" ] || apt_install chromium
    [ -x "${PROOFMINT_CHROMIUM:-/usr/bin/chromium}" ] \
      || die "Chromium not found: install it (Debian: apt-get install chromium) or set PROOFMINT_CHROMIUM=/path/to/chromium"
  fi
}

# stale STAMP FILE...: whether the FILEs changed since `stamp STAMP FILE...` last recorded them.
stale() { local file="$1"; shift; [ ! -f "$file" ] || [ "$(cat "$file")" != "$(digest "$@")" ]; }
stamp() { local file="$1"; shift; digest "$@" > "$file"; }

find_python() {
  local candidate
  for candidate in "${PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$candidate"; return 0
    fi
  done
  die "Python 3.11 not found: install it (Debian: apt-get install python3.11 python3.11-venv) or set PYTHON=/path/to/python3.11"
}

setup_python() {
  local done="$VENV/.proofmint-stamp" inputs=(pyproject.toml requirements.lock)
  if [ -x "$VENV/bin/python" ] && ! stale "$done" "${inputs[@]}"; then
    return 0
  fi
  local py
  py="$(find_python)"
  if [ ! -x "$VENV/bin/python" ]; then
    say "creating the Python venv in .venv ($($py --version))"
    "$py" -m venv "$VENV" || die "could not create a venv: install python3.11-venv (Debian) and run again"
  fi
  say "installing Python packages (pinned by requirements.lock; the first time takes a few minutes)"
  # A recent pip resolves the pinned set much faster than the one a fresh venv starts with.
  venv_pip install --quiet "pip==$PIP_VERSION"
  # pip's own log is hundreds of lines: show one progress line per 25 packages instead.
  PYTHONWARNINGS=ignore venv_pip install --progress-bar off -c requirements.lock -e ".[dev]" \
    | awk '/^(Collecting|Processing|Obtaining) / { n++; if (n % 25 == 0) { printf "[setup]   %d packages resolved\n", n > "/dev/stderr" } }
           /^Installing collected packages/ { print "[setup]   installing " n " packages" > "/dev/stderr" }
           /^(ERROR|error)/ { print > "/dev/stderr" }'
  venv_pip check >/dev/null || { venv_pip check; die "pip check failed"; }
  stamp "$done" "${inputs[@]}"
}

setup_node() {
  local done="$ROOT/node_modules/.proofmint-stamp" inputs=(package.json package-lock.json)
  stale "$done" "${inputs[@]}" || return 0
  say "installing npm packages (npm ci: solc-js, anvil, cast, OpenZeppelin, IPFS reference, the dApp's build)"
  npm ci --no-audit --no-fund --loglevel=error 2> >(grep -v 'Unknown user config' >&2) >/dev/null
  stamp "$done" "${inputs[@]}"
}

setup_dapp() {
  # The dApp (dapp/src) is bundled once per change of its sources or the npm packages.
  local done="$ROOT/dapp/dist/.proofmint-stamp" inputs
  mapfile -t inputs < <(printf '%s\n' package-lock.json tools/build-dapp.mjs dapp/index.html; find dapp/src -type f | sort)
  stale "$done" "${inputs[@]}" || return 0
  say "building the dApp (esbuild: dapp/src -> dapp/dist)"
  node tools/build-dapp.mjs >/dev/null
  stamp "$done" "${inputs[@]}"
}

install_solc_at() {
  # $1: folder py-solc-x searches. Writes solc-v$SOLC_VERSION there, replacing only our own wrapper.
  local dir="$1" target="$1/solc-v$SOLC_VERSION" native
  mkdir -p "$dir"
  native="$(command -v solc || true)"
  if [ -n "$native" ] && "$native" --version 2>/dev/null | grep -q "^Version: $SOLC_VERSION+"; then
    [ "$(readlink "$target" 2>/dev/null || true)" = "$native" ] || ln -sfn "$native" "$target"
    return 0
  fi
  local shim
  shim="$(printf '#!/bin/sh\n# proofmint: solc %s over solc-js (no native solc found)\nexec node "%s/tools/solc-cli.js" "$@"\n' "$SOLC_VERSION" "$ROOT")"
  if [ -e "$target" ] && ! grep -q "^# proofmint: solc" "$target" 2>/dev/null; then
    return 0  # a solc someone else installed: leave it alone
  fi
  if [ ! -f "$target" ] || [ "$(cat "$target")" != "$shim" ]; then
    rm -f "$target"
    printf '%s\n' "$shim" > "$target"
    chmod +x "$target"
  fi
}

setup_solc() {
  install_solc_at "$SOLC_DIR"
  # Plain `ape compile` outside make looks in ~/.solcx; give it the same compiler.
  if [ -n "${HOME:-}" ] && [ -w "$HOME" ]; then install_solc_at "$HOME/.solcx"; fi
  "$SOLC_DIR/solc-v$SOLC_VERSION" --version | grep -q "^Version: $SOLC_VERSION+" \
    || die "the Solidity compiler at $SOLC_DIR/solc-v$SOLC_VERSION does not answer --version"
}

FOR_TESTS=0
main() {
  local started=$SECONDS
  case "${1:-}" in
    --tests) FOR_TESTS=1 ;;
    "") ;;
    *) die "usage: tools/bootstrap.sh [--tests]  (--tests also installs what the tests need: Chromium)" ;;
  esac
  setup_system
  setup_node
  setup_dapp
  setup_python
  setup_solc
  say "ready ($((SECONDS - started)) s)"
}

main "$@"
