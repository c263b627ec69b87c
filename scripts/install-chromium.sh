#!/usr/bin/env bash
# Installs the headless browser the playground's tests drive (test/playground.test.ts, through
# puppeteer-core): Debian's / Ubuntu's `chromium` package. Does nothing when one is already there
# ($SHIMMY_CHROMIUM, /usr/bin/chromium or /usr/bin/chromium-browser). Without a browser those
# tests fail, saying to run this.
set -euo pipefail
for candidate in "${SHIMMY_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
  if [ -n "$candidate" ] && [ -x "$candidate" ]; then
    echo "chromium: $candidate"
    exit 0
  fi
done
if ! command -v apt-get >/dev/null; then
  echo "No Chromium found and no apt-get here: install Chromium or Chrome and set SHIMMY_CHROMIUM to its binary" >&2
  exit 1
fi
bash "$(dirname "$0")/apt-install.sh" chromium
echo "chromium: $(command -v chromium)"
