#!/usr/bin/env bash
# Part of `npm test`: installs the Debian packages of .ci/apt-packages.txt that the end-to-end
# extension test needs (libkrb5-dev to build code-server's native modules, ripgrep for its search,
# chromium to drive the workbench). Already installed: returns at once (dpkg-query, no network).
# Otherwise installs them as root directly, or through `sudo -n` (never a password prompt), running
# `apt-get update` once only when the package lists do not know a package yet; when neither root
# nor password-less sudo is available it says what to run, and fails.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
LIST="$ROOT/.ci/apt-packages.txt"

mapfile -t WANTED < <(sed -e 's/#.*//' "$LIST" | tr -s ' \t' '\n' | sed '/^$/d')
missing=()
for pkg in "${WANTED[@]}"; do
  status="$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)"
  [ "$status" = "installed" ] || missing+=("$pkg")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "npm test: the end-to-end extension test needs these Debian packages: ${missing[*]}; this machine has no apt-get: install them (or their equivalents) yourself, then run npm test again." >&2
  exit 1
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "npm test: the end-to-end extension test needs these Debian packages: ${missing[*]}." >&2
  if command -v sudo >/dev/null 2>&1; then why="sudo asks for a password"; else why="there is no sudo"; fi
  echo "This is not root and $why, so they cannot be installed from here. As root, run:" >&2
  echo "  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  echo "then npm test again." >&2
  exit 1
fi

apt() { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q "$@"; }
echo "npm test: installing the Debian packages the end-to-end test needs: ${missing[*]}" >&2
# A fresh machine's package lists may be empty: update once, only when the install cannot find a package.
if ! apt install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
  apt update >&2
  apt install -y --no-install-recommends "${missing[@]}" >&2
fi
