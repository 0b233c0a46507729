#!/usr/bin/env bash
# Chromium and its chromedriver for the demo's browser tests (tests/test_demo_browser.py), from the
# distribution's packages when missing. `make test` runs this; OGAN_SKIP_BROWSER=1 skips it (and the tests).
set -euo pipefail
if [[ "${OGAN_SKIP_BROWSER:-0}" == 1 ]]; then exit 0; fi
have() { command -v "$1" >/dev/null 2>&1; }
if (have chromium || have chromium-browser || have google-chrome) && have chromedriver; then exit 0; fi

fail() {
  echo "error: the demo's browser tests need Chromium and chromedriver ($1): install them" \
    "(Debian/Ubuntu: apt-get install chromium chromium-driver), or run make test OGAN_SKIP_BROWSER=1" >&2
  exit 2
}
if [[ "$(id -u)" == 0 ]]; then sudo=(); elif have sudo && sudo -n true 2>/dev/null; then sudo=(sudo -n); else
  fail "installing them needs root"
fi
have apt-get || fail "this script installs them with apt-get, which this machine lacks"
packages=(chromium chromium-driver)
install() { "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}"; }
echo "installing ${packages[*]} for the demo's browser tests"
# The package lists may be stale (a mirror drops old versions): update them once if the install fails.
install >/dev/null || { "${sudo[@]}" apt-get update -q >/dev/null && install >/dev/null; } || fail "apt-get failed"
