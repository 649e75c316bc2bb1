#!/usr/bin/env bash
# Interleaved A/B of two newsdesk binaries on a cold `fetch` (empty database each run):
# A B A B ... so drift in the machine's speed or in other load hits both alike. Prints each
# run and, per binary, the median and range of wall, CPU (user+sys) and peak RSS.
#
#   bench/ab.sh BASE_BIN NEW_BIN CONFIG [RUNS]
#
# CONFIG is a feeds.toml whose sources point at a running farm, e.g. the one printed by
#   cargo bench --bench ingest -- --farm-only --seconds 3000
# Its `database = ...` line is rewritten per run to a fresh file in a temp dir.
# Environment: A_ENV / B_ENV are extra `env` assignments for A or B only (e.g.
# B_ENV="LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libmimalloc.so.2" to try an allocator
# without rebuilding; then pass the same binary twice).
set -euo pipefail
[ $# -ge 3 ] || { echo "usage: $0 BASE_BIN NEW_BIN CONFIG [RUNS]" >&2; exit 64; }
A=$1 B=$2 CONFIG=$3 RUNS=${4:-5}
[ -x /usr/bin/time ] || { echo "needs GNU time at /usr/bin/time" >&2; exit 69; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() { # label bin extra-env
    local label=$1 bin=$2 extra=$3
    rm -f "$tmp"/run.db "$tmp"/run.db-wal "$tmp"/run.db-shm
    sed -E "s#^database = .*#database = \"$tmp/run.db\"#" "$CONFIG" >"$tmp/run.toml"
    # shellcheck disable=SC2086 # $extra is a list of VAR=value words on purpose.
    if ! env $extra /usr/bin/time -f '%e %U %S %M' -o "$tmp/t" "$bin" --config "$tmp/run.toml" fetch \
        >"$tmp/out" 2>&1; then
        echo "$label: fetch failed:" >&2
        tail -5 "$tmp/out" >&2
        exit 1
    fi
    local items
    items=$(sqlite3 "$tmp/run.db" 'SELECT COUNT(*) FROM items' 2>/dev/null || echo '?')
    read -r wall user sys rss <"$tmp/t"
    cpu=$(echo "$user + $sys" | bc)
    printf '%s %s %s %s %s\n' "$label" "$wall" "$cpu" "$rss" "$items" | tee -a "$tmp/all"
}

echo "label wall_s cpu_s peak_rss_kb items"
for i in $(seq "$RUNS"); do
    run A "$A" "${A_ENV:-}"
    run B "$B" "${B_ENV:-}"
done

stats() { # label column
    awk -v l="$1" -v c="$2" '$1 == l { print $c }' "$tmp/all" | sort -n |
        awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
               printf "%s (%s-%s)", m, v[1], v[NR] }'
}
echo
for l in A B; do
    echo "$l: wall $(stats $l 2) s, cpu $(stats $l 3) s, peak RSS $(stats $l 4) kB, n=$RUNS"
done
