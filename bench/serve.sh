#!/usr/bin/env bash
# Serving benchmark: a 50-story topic served by newsdesk, and the very same bytes served by
# nginx as static files (gzip_static on, pre-compressed .gz), both loaded with wrk in the same
# run: plain, gzip and If-None-Match (304) requests, 50 connections each, in interleaved rounds
# (newsdesk, nginx, nginx, newsdesk, ...) so a noisy minute on a shared machine hits both.
# Reports median req/s, worst p99 and each server's CPU time per request (from /proc), which
# varies much less from run to run than req/s when server and wrk share the cores.
#
#   bench/serve.sh            # needs nginx and wrk (apt-get install nginx wrk)
#   ROUNDS=9 DURATION=10s bench/serve.sh
#
# newsdesk side: `newsdesk run` when it answers /healthz, else the serving half on its own
# (`cargo run --example serve`), over a database filled by `newsdesk fetch` from file:// feeds.
# Everything binds 127.0.0.1; nothing leaves the machine. Prints one table and the ratios.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
for tool in nginx wrk curl python3; do
  command -v "$tool" >/dev/null || { echo "bench/serve.sh: $tool is not installed (apt-get install nginx wrk curl)" >&2; exit 1; }
done

cargo build --release --quiet --bin newsdesk --example serve
BIN=target/release/newsdesk
SERVE=target/release/examples/serve

WORK=$(mktemp -d /tmp/newsdesk-bench.XXXXXX)
chmod 755 "$WORK" # nginx workers may run as another user
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -INT "$p" 2>/dev/null || true; done
  sleep 0.3
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ND_PORT=$(free_port)
NGX_PORT=$(free_port)

# Two outlets reporting the same 50 stories (titles reworded), plus realistic summaries.
python3 - "$WORK" <<'PY'
import random, string, sys, email.utils, time
random.seed(7)
# Made-up words, so no two stories share vocabulary and clustering keeps them apart.
def word(): return "".join(random.choice(string.ascii_lowercase) for _ in range(random.randint(5, 9)))
now = time.time()
stories = []
for i in range(50):
    w = [word() for _ in range(6)]
    body = " ".join(random.choice(w + [word() for _ in range(30)]) for _ in range(90))
    stories.append((w, body, now - 60 * (i + 1)))
for outlet, fmt in [("alpha", "{0} {1} {2} in {3} as {4} {5}"), ("beta", "{3}: {0} {1} {2} as {4} {5}")]:
    items = []
    for i, (w, body, t) in enumerate(stories):
        title = fmt.format(w[0].title(), *w[1:3], w[3].title(), *w[4:]).capitalize()
        items.append(
            f"<item><guid>{outlet}-{i}</guid><link>https://{outlet}.example/news/{i}</link>"
            f"<title>{title}</title><description>&lt;p&gt;{' '.join(w)}. {body}&lt;/p&gt;</description>"
            f"<category>world</category><pubDate>{email.utils.formatdate(t)}</pubDate></item>")
    with open(f"{sys.argv[1]}/{outlet}.xml", "w") as f:
        f.write('<?xml version="1.0"?><rss version="2.0"><channel><title>' + outlet + '</title>'
                '<link>https://' + outlet + '.example/</link>' + "".join(items) + "</channel></rss>")
PY

cat > "$WORK/feeds.toml" <<EOF
[daemon]
database = "bench.db"
listen = "127.0.0.1:$ND_PORT"
base_url = "http://127.0.0.1:$ND_PORT/"
schedule = "every 6h"

[[source]]
id = "alpha"
url = "file://$WORK/alpha.xml"

[[source]]
id = "beta"
url = "file://$WORK/beta.xml"

[[topic]]
id = "top"
title = "Top News"
rank = "latest"
limit = 50
EOF
"$BIN" --config "$WORK/feeds.toml" fetch >/dev/null 2>&1
STORIES=$("$BIN" --config "$WORK/feeds.toml" stories --topic top 2>/dev/null | tail -1)
"$BIN" --config "$WORK/feeds.toml" export "$WORK/site" >/dev/null 2>&1

# newsdesk: the daemon if it serves HTTP, else the serving half alone.
up() { curl -sf -o /dev/null --max-time 0.3 "http://127.0.0.1:$ND_PORT/healthz"; }
SERVER="newsdesk run"
"$BIN" --config "$WORK/feeds.toml" run 2>"$WORK/daemon.log" &
PIDS+=($!)
for _ in $(seq 15); do up && break; sleep 0.1; done
if ! up; then
  kill -INT "${PIDS[-1]}" 2>/dev/null || true
  wait "${PIDS[-1]}" 2>/dev/null || true
  SERVER="examples/serve"
  "$SERVE" "$WORK/feeds.toml" "127.0.0.1:$ND_PORT" 2>"$WORK/serve.log" &
  PIDS+=($!)
  for _ in $(seq 50); do up && break; sleep 0.1; done
  up || { echo "newsdesk did not start:" >&2; cat "$WORK/serve.log" >&2; exit 1; }
fi

# nginx serves the exported bytes; check they are the very bytes newsdesk serves.
mkdir -p "$WORK/nginx"
cat > "$WORK/nginx/nginx.conf" <<EOF
worker_processes auto;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 100000;
  types { application/rss+xml rss; application/atom+xml atom; application/feed+json json; text/html html; }
  client_body_temp_path $WORK/nginx; proxy_temp_path $WORK/nginx; fastcgi_temp_path $WORK/nginx;
  uwsgi_temp_path $WORK/nginx; scgi_temp_path $WORK/nginx;
  server {
    listen 127.0.0.1:$NGX_PORT;
    root $WORK/site;
    gzip_static on;
    etag on;
    # The pages link /topics/{id} and /stories/{id}; export writes them as .html.
    location / { try_files \$uri \$uri.html \$uri/ =404; }
  }
}
EOF
nice -n 19 nginx -c "$WORK/nginx/nginx.conf" -e "$WORK/nginx/error.log" -g 'daemon off;' &
PIDS+=($!)
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$NGX_PORT/topics/top.rss" && break; sleep 0.1; done

# A story page: the first story of the exported front page.
STORY=$(grep -o 'href="/stories/[0-9]*"' "$WORK/site/index.html" | head -1 | tr -dc 0-9)
PATHS=${PATHS:-/topics/top.rss / /stories/$STORY}
ND_URL="http://127.0.0.1:$ND_PORT/topics/top.rss"
NGX_URL="http://127.0.0.1:$NGX_PORT/topics/top.rss"
curl -sf "$ND_URL" -o "$WORK/nd.rss"
if ! cmp -s "$WORK/nd.rss" "$WORK/site/topics/top.rss"; then
  echo "note: served and exported bytes differ (a story changed between the two); sizes $(wc -c <"$WORK/nd.rss") / $(wc -c <"$WORK/site/topics/top.rss")" >&2
fi
etag() { curl -sfI "$1" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}'; }
PLAIN=$(wc -c <"$WORK/nd.rss")
GZ=$(curl -sf -H 'Accept-Encoding: gzip' "$ND_URL" | wc -c)
for p in $PATHS; do
  curl -sf -o /dev/null "http://127.0.0.1:$NGX_PORT$p" || { echo "nginx does not serve $p from the export" >&2; exit 1; }
  echo "  $p: newsdesk $(curl -sf "http://127.0.0.1:$ND_PORT$p" | wc -c) bytes ($(curl -sf -H 'Accept-Encoding: gzip' "http://127.0.0.1:$ND_PORT$p" | wc -c) gzip), nginx $(curl -sf "http://127.0.0.1:$NGX_PORT$p" | wc -c) bytes"
done

# The servers' processes, for their CPU time: newsdesk's, and nginx's master (workers are its children).
ND_PID=${PIDS[-2]}
NGX_PID=${PIDS[-1]}

# CPU ticks (user + system) used so far by a server: the process and, for nginx, its workers.
ticks() {
  local sum=0 p
  for p in "$@" $(pgrep -P "$1" || true); do
    sum=$((sum + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
  done
  echo "$sum"
}

# One wrk run against one server: appends "kind server req/s p99_ms cpu_us_per_request errors".
load() {
  local kind=$1 who=$2 pid=$3 url=$4; shift 4
  local before after
  before=$(ticks "$pid")
  # wrk's own CPU seconds too (its children's rusage, read by a wrapper).
  wrk_cpu=$(python3 -c 'import resource, subprocess, sys
with open(sys.argv[1], "w") as out: subprocess.run(sys.argv[2:], stdout=out, stderr=subprocess.STDOUT)
r = resource.getrusage(resource.RUSAGE_CHILDREN); print(f"{r.ru_utime + r.ru_stime:.3f}")' "$WORK/wrk.out" \
    nice -n "${CLIENT_NICE:-19}" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "$@" "$url")
  after=$(ticks "$pid")
  python3 - "$WORK/wrk.out" "$kind" "$who" "$((after - before))" "$(getconf CLK_TCK)" "$wrk_cpu" >>"$WORK/runs" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
kind, who, ticks, hz, wrk_cpu = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", t).group(1))
n, secs = re.search(r"(\d+) requests in ([\d.]+)s", t).groups()
n, secs = int(n), float(secs)
m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", t, re.M)
scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
errs = "!" if re.search(r"Socket errors: (.*)", t) else "-"
print(kind, who, f"{rps:.0f}", f"{float(m.group(1)) * scale:.2f}", f"{ticks * 1e6 / hz / max(n, 1):.2f}",
      f"{wrk_cpu / secs:.2f}", errs)
PY
}

echo "newsdesk ($SERVER) vs nginx $(nginx -v 2>&1 | sed 's/.*nginx\///'): $STORIES; RSS $PLAIN bytes, gzip $GZ bytes"
echo "wrk -t$THREADS -c$CONNS -d$DURATION, $ROUNDS interleaved rounds per request kind, on $(nproc) cores (servers and wrk share them)"
: >"$WORK/runs"
for path in $PATHS; do
ND_URL="http://127.0.0.1:$ND_PORT$path"
NGX_URL="http://127.0.0.1:$NGX_PORT$path"
ND_ETAG=$(etag "$ND_URL")
NGX_ETAG=$(etag "$NGX_URL")
for kind0 in plain gzip 304; do
  kind="$path:$kind0"
  case $kind0 in
    plain) ND_ARGS=(); NGX_ARGS=() ;;
    gzip) ND_ARGS=(-H 'Accept-Encoding: gzip'); NGX_ARGS=(-H 'Accept-Encoding: gzip') ;;
    304) ND_ARGS=(-H "If-None-Match: $ND_ETAG"); NGX_ARGS=(-H "If-None-Match: $NGX_ETAG") ;;
  esac
  for round in $(seq "$ROUNDS"); do
    # Alternate who goes first, so neither always gets the machine's warmer or quieter turn.
    if ((round % 2)); then
      load "$kind" newsdesk "$ND_PID" "$ND_URL" "${ND_ARGS[@]}"
      load "$kind" nginx "$NGX_PID" "$NGX_URL" "${NGX_ARGS[@]}"
    else
      load "$kind" nginx "$NGX_PID" "$NGX_URL" "${NGX_ARGS[@]}"
      load "$kind" newsdesk "$ND_PID" "$ND_URL" "${ND_ARGS[@]}"
    fi
  done
done
done
python3 - "$WORK/runs" <<'PY'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    kind, who, *nums, err = line.split()
    runs.setdefault((kind, who), []).append((*map(float, nums), err))
kinds = list(dict.fromkeys(k for k, _ in runs))
print(f"{'request':<24} {'newsdesk req/s':>15} {'p99 ms':>7} {'us/req':>6} {'wrk':>5} {'nginx req/s':>12} {'p99 ms':>7} "
      f"{'us/req':>6} {'wrk':>5} {'ratio':>6}  per round")
for kind in kinds:
    nd, ngx = runs[(kind, "newsdesk")], runs[(kind, "nginx")]
    med = lambda rs, i: statistics.median(r[i] for r in rs)
    worst = lambda rs: max(r[1] for r in rs)
    mark = lambda rs: "!" if any(r[4] == "!" for r in rs) else ""
    per_round = " ".join(f"{a[0] / max(b[0], 1):.2f}" for a, b in zip(nd, ngx))
    cols = lambda rs, w: f"{med(rs, 0):>{w}.0f}{mark(rs):1} {worst(rs):>7.2f} {med(rs, 2):>6.2f} {med(rs, 3):>5.2f}"
    print(f"{kind:<24} {cols(nd, 14)} {cols(ngx, 11)} {med(nd, 0) / max(med(ngx, 0), 1):>6.2f}  {per_round}")
print("req/s, us/req (the server's CPU time per request) and wrk (CPUs wrk used): medians over the rounds;")
print("p99: the worst round; ratio = median newsdesk req/s / median nginx req/s; '!': socket errors in a round.")
print("When wrk uses about half of the cores, wrk is the limit, not the server: compare us/req there.")
PY
