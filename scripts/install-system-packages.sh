#!/usr/bin/env bash
# System packages some tests need, installed from Debian/Ubuntu's apt when missing:
#   openssh-server + rsync  - the `ray up` / `ray submit` / `ray down` test against 127.0.0.1
#   chromium                - the dashboard test (headless, driven by Playwright)
# Needs root; otherwise it prints what to install and exits 0, and the tests that need these
# packages skip, saying why.
set -euo pipefail


missing=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)

if [ "$(id -u)" != 0 ]; then
    if [ ${#missing[@]} -gt 0 ]; then
        echo "install-system-packages: not root; the cluster-launch test will skip." \
             "To run it: sudo $0 (installs ${missing[*]})" >&2
    fi
    exit 0
fi

if [ ${#missing[@]} -gt 0 ]; then
    echo "install-system-packages: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

