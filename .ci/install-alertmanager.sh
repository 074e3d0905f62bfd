#!/usr/bin/env bash
# Installs Alertmanager from Debian's package for the alert integration tests (Prometheus fires a
# rule, Alertmanager groups it and posts to sitrep's webhook).
set -euo pipefail

if command -v prometheus-alertmanager >/dev/null 2>&1; then
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
    prometheus-alertmanager

for tool in prometheus-alertmanager; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-alertmanager: $tool is still missing after installing the prometheus-alertmanager package" >&2
        exit 1
    fi
done
prometheus-alertmanager --version 2>&1 | head -n 1
