#!/usr/bin/env bash
# Installs headless Chromium and chromedriver from Debian's packages for the browser tests.
set -euo pipefail

have() {
    command -v "$1" >/dev/null 2>&1
}

if have chromium && have chromedriver; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive

$SUDO apt-get update -qq
# Recommends pull in a desktop's worth of packages; fonts are kept so that pages render text.
$SUDO apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    chromium chromium-driver fonts-dejavu-core

for tool in chromium chromedriver; do
    if ! have "$tool"; then
        echo "install-chromium: $tool is still missing after installing chromium and chromium-driver" >&2
        exit 1
    fi
done
chromium --version 2>/dev/null | head -n 1 || true
chromedriver --version | head -n 1
