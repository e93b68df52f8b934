#!/usr/bin/env bash
# Install the Debian packages the test suite talks to, when they are missing:
#   postgresql  - the store tests run against a throw-away server (tests/pg_server.py)
#   chromium    - the web widget tests drive a real browser through Playwright
# Needs root and apt-get; otherwise it only says what is missing and exits 0, and the
# tests that need the missing program skip with the reason.
set -euo pipefail

missing=()
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null; then
    missing+=(postgresql)
fi
if ! command -v chromium >/dev/null && ! command -v chromium-browser >/dev/null; then
    missing+=(chromium)
fi
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
    echo "install-system-deps: missing ${missing[*]} (not root or no apt-get): not installing;" \
        "tests that need them will skip" >&2
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
echo "install-system-deps: installing ${missing[*]}" >&2
# Package lists may be absent (fresh container) or stale: retry after an update.
if ! apt-get install -y -q "${missing[@]}"; then
    apt-get update -q
    apt-get install -y -q "${missing[@]}"
fi
