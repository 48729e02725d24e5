#!/usr/bin/env bash
# Everything a fresh Debian 12 machine (as root) needs to run zfsrep's tests and demo:
# host packages, and a virtualenv (.venv) with zfsrep and its test dependencies.
# Idempotent; the lab image itself is built (and cached) by `python -m tests.lab up`.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v nix-instantiate >/dev/null || need_apt+=(nix-bin)
command -v ssh >/dev/null || need_apt+=(openssh-client)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
    echo "setup: installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi

if [[ ! -x .venv/bin/python ]]; then
    python3 -m venv .venv
fi
stamp=.venv/.zfsrep-installed
if [[ ! -f $stamp || pyproject.toml -nt $stamp ]]; then
    .venv/bin/pip install -q --upgrade pip >/dev/null
    .venv/bin/pip install -q -e '.[test]'
    touch "$stamp"
fi
