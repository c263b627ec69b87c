#!/usr/bin/env bash
# Installs Debian / Ubuntu packages with apt-get (through sudo when not root), without recommends.
#   bash scripts/apt-install.sh PACKAGE ...
set -euo pipefail
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -q
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "$@"
