#!/usr/bin/env bash
# Installs Prometheus and promtool from Debian's packages for the metrics integration tests.
set -euo pipefail

if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive

# Containers and CI images have no init system: the package's postinst would try to start the
# service and fail the install. policy-rc.d exit 101 tells invoke-rc.d not to start anything.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 755 "$policy"
    made_policy=1
fi
cleanup() {
    if [ "$made_policy" -eq 1 ]; then
        $SUDO rm -f "$policy"
    fi
}
trap cleanup EXIT

$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    prometheus

for tool in prometheus promtool; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-prometheus: $tool is still missing after installing the prometheus package" >&2
        exit 1
    fi
done
prometheus --version | head -n 1
