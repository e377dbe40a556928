#!/usr/bin/env bash
# The browser the console's test drives (tests/test_console.py): Debian's Chromium and its
# ChromeDriver. Installed only where that can be done without asking anyone: as root with
# apt-get (CI, containers). Anywhere else this says how, and the test skips, saying why.
set -euo pipefail
if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Chromium and ChromeDriver (Debian's chromium, chromium-driver) for the browser test"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    chromium chromium-driver >/dev/null
  exit 0
fi
echo "SKIPPED: no Chromium here, so the console's browser test will skip;" \
  "to run it: sudo apt-get install chromium chromium-driver"
