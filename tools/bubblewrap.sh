#!/usr/bin/env bash
# Installs bubblewrap from Debian's packages when it is missing: kodad runs every process a
# session starts under it (service/kodad/tools/sandbox.py), and the sandbox tests need it.
set -euo pipefail
if command -v bwrap >/dev/null; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends bubblewrap
