#!/usr/bin/env bash
# Installs a pinned code-server (a real VS Code workbench served over HTTP) into .cache/code-server,
# once; later runs reuse it. It is NOT a project dependency: its install builds native modules and
# weighs hundreds of MB, and only the end-to-end extension test needs it.
# Needs the Debian packages in .ci/apt-packages.txt (libkrb5-dev to build, ripgrep for search,
# chromium to drive the workbench). Prints the path of the code-server executable.
set -euo pipefail
VERSION="4.100.3"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX="$ROOT/.cache/code-server"
BIN="$PREFIX/node_modules/.bin/code-server"
STAMP="$PREFIX/.installed-$VERSION"

if [ -x "$BIN" ] && [ -f "$STAMP" ]; then
  echo "$BIN"
  exit 0
fi

mkdir -p "$PREFIX"
LOG="$PREFIX/install.log"
: >"$LOG"
fail() {
  echo "code-server $VERSION install failed at: $1; see $LOG" >&2
  tail -n 30 "$LOG" >&2
  exit 1
}
export ONNXRUNTIME_NODE_INSTALL=skip
# code-server's postinstall refuses to run as root unless this is set (npm 7+ dropped the flag).
export npm_config_unsafe_perm=true
# 1. The package and its own dependencies, scripts deferred.
npm install --prefix "$PREFIX" --no-save --no-audit --no-fund --no-package-lock --ignore-scripts \
  "code-server@$VERSION" >>"$LOG" 2>&1 || fail "npm install"
VSCODE="$PREFIX/node_modules/code-server/lib/vscode"
# 2. The VS Code server's dependencies (normally installed by code-server's postinstall).
(cd "$VSCODE" && npm install --omit=dev --no-audit --no-fund --ignore-scripts) >>"$LOG" 2>&1 || fail "lib/vscode dependencies"
# 3. @vscode/ripgrep's postinstall downloads rg from GitHub (unreachable here); it skips the
#    download when bin/ exists, so give it Debian's ripgrep.
RG_BIN="$VSCODE/node_modules/@vscode/ripgrep/bin"
mkdir -p "$RG_BIN"
ln -sf "$(command -v rg || echo /usr/bin/rg)" "$RG_BIN/rg"
# 4. Now every install script: native modules build against the local Node headers, and
#    code-server's postinstall links its helper scripts and installs the built-in extensions' deps.
(cd "$PREFIX" && npm rebuild --foreground-scripts) >>"$LOG" 2>&1 || fail "npm rebuild"
# The VS Code server's own native modules (node-pty, spdlog, kerberos, ...). node-pty's post-install
# script fails on a Windows-only clean-up step after its Linux build succeeded, so judge by the
# built binaries rather than npm's exit status.
(cd "$VSCODE" && npm rebuild --foreground-scripts) >>"$LOG" 2>&1 || true
for built in node-pty/build/Release/pty.node @vscode/spdlog/build/Release/spdlog.node kerberos/build/Release/kerberos.node; do
  [ -f "$VSCODE/node_modules/$built" ] || fail "native module $built was not built"
done
[ -x "$BIN" ] || fail "no $BIN"
touch "$STAMP"
echo "$BIN"
