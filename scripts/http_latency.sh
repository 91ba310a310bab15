#!/usr/bin/env bash
# The HTTP round trip of `sessionvisor serve` for a warm session: N sequential
# POST /invocations (an `echo` event) on one keep-alive connection, after one
# warm-up event that starts the session's worker. Once with the native
# reference worker, once with the Python echo agent; sandboxed, as by default.
#
#   scripts/http_latency.sh [N]        (N defaults to 500)
#
# Times are measured by the client (Python's http.client), so they include
# its own overhead. Loopback only; the servers stop by themselves at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-500}

cargo build --release --workspace --quiet
bin=target/release/sessionvisor

measure() {
  local label=$1
  shift
  local out pid url
  out=$(mktemp)
  "$bin" serve --listen 127.0.0.1:0 "$@" >"$out" &
  pid=$!
  for _ in $(seq 100); do
    url=$(sed -n 's/^listening on //p' "$out")
    [ -n "$url" ] && break
    sleep 0.1
  done
  if [ -z "$url" ]; then
    echo "$label: the server did not start" >&2
    kill "$pid" 2>/dev/null || true
    return 1
  fi
  python3 - "$url" "$n" "$label" <<'PY'
import http.client, json, math, sys, time, urllib.parse

url, n, label = sys.argv[1], int(sys.argv[2]), sys.argv[3]
parts = urllib.parse.urlsplit(url)
conn = http.client.HTTPConnection(parts.hostname, parts.port)
body = json.dumps({"action": "echo", "message": "hello"})
headers = {
    "Content-Type": "application/json",
    "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": "latency-probe",
}

def once():
    conn.request("POST", "/invocations", body, headers)
    response = conn.getresponse()
    response.read()
    if response.status != 200:
        sys.exit(f"{label}: HTTP {response.status}")

start = time.perf_counter()
once()  # starts the session's worker
cold = time.perf_counter() - start
samples = []
for _ in range(n):
    start = time.perf_counter()
    once()
    samples.append(time.perf_counter() - start)
samples.sort()
rank = lambda q: samples[max(0, math.ceil(q * n) - 1)] * 1000
print(f"{label:>7}: first event (worker start) {cold * 1000:.1f} ms; warm n={n}: "
      f"p50 {rank(0.50):.3f} ms, p99 {rank(0.99):.3f} ms, max {samples[-1] * 1000:.3f} ms")
PY
  kill -TERM "$pid"
  wait "$pid"
  rm -f "$out"
}

measure native -- "$(pwd)/target/release/sessionvisor-worker"
measure python --handler worker/examples/echo_agent.py:handler
