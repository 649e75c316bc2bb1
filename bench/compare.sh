#!/usr/bin/env bash
# Side-by-side benchmark: newsdesk, newsboat, sfeed and Python feedparser on the same
# generated farm (1,000 feeds x 30 items, ETag/Last-Modified, 304s) served from one local
# server, measured in the same run: cold poll, warm polls, parse throughput, peak memory.
# Prints one table (benches/compare.rs does the measuring; this script gets the tools).
#
#   bench/compare.sh                          # installs what is missing, builds, runs
#   INSTALL=0 bench/compare.sh                # never install: missing tools get a row saying so
#   NEWSDESK_BENCH_FEEDS=100 bench/compare.sh # smaller farm (see benches/compare.rs for more)
#
# Installing needs root and apt-get (newsboat, sfeed, curl, GNU time) and pip (feedparser).
# A tool that is still missing afterwards is not an error: its row says "not installed".
# Everything binds 127.0.0.1; nothing leaves the machine once the tools are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
INSTALL=${INSTALL:-1}
PYTHON=${NEWSDESK_COMPARE_PYTHON:-python3}

have() { command -v "$1" >/dev/null 2>&1; }
gnu_time() { /usr/bin/time --version 2>&1 | grep -q GNU; }
has_feedparser() { "$PYTHON" -c 'import feedparser' >/dev/null 2>&1; }

if [[ $INSTALL == 1 ]]; then
  pkgs=()
  have newsboat || pkgs+=(newsboat)
  have sfeed_update || pkgs+=(sfeed)
  have curl || pkgs+=(curl)
  # GNU time gives each run's CPU and peak RSS from wait4; without it the bench samples /proc.
  gnu_time || pkgs+=(time)
  if ((${#pkgs[@]} > 0)); then
    if [[ $(id -u) == 0 ]] && have apt-get; then
      echo "installing: ${pkgs[*]}" >&2
      # An old package index may not know a package yet: refresh it once, then retry.
      if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null; then
        apt-get update >/dev/null || true
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${pkgs[@]}" >/dev/null ||
          echo "warning: apt-get could not install ${pkgs[*]}; those rows will say so" >&2
      fi
    else
      echo "warning: not root or no apt-get: not installing ${pkgs[*]} (those rows will say so)" >&2
    fi
  fi
  if have "$PYTHON" && ! has_feedparser; then
    echo "installing: feedparser (pip)" >&2
    "$PYTHON" -m pip install --quiet feedparser ||
      { [[ $(id -u) == 0 ]] && have apt-get && apt-get install -y --no-install-recommends python3-feedparser >/dev/null; } ||
      echo "warning: could not install feedparser; its row will say so" >&2
  fi
fi

cargo build --release --quiet --bin newsdesk
exec cargo bench --quiet --bench compare
