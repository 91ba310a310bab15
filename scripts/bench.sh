#!/usr/bin/env bash
# sessionvisor against real baselines, each measured in this same run, as
# ratios. Prints one table row per target (what | sessionvisor | baseline |
# ratio | target | met?), then the raw figures. Asserts nothing: it reports.
#
#   scripts/bench.sh            (as root, like CI; about 2 minutes on 2 cores)
#
# How each figure is taken:
# - Cold starts (a session's first event, dispatch to result) come from
#   `sessionvisor stress`. Each baseline runs through the very same code and
#   timer: `stress --isolation none --sessions 1 -- BASELINE` starts the
#   baseline command as its one shared worker on the first event, so the
#   only difference is sessionvisor's sandbox. Baselines are the median of
#   several single-session runs.
# - Warm round trips: one Python driver times N sequential lines to
#   `sessionvisor run` (one session) and N frames over plain pipes to the
#   same worker started without any supervisor (the floor).
# - Throughput, 100 sessions at once, and 1,000 live sessions: `stress`.
# Raw JSON reports are kept in target/bench/.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

if ! command -v bwrap >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq bubblewrap
  else
    echo "bench: bwrap is missing and this is not root; its baseline is skipped" >&2
  fi
fi

cargo build --release --workspace --quiet || exit 1
bin=$root/target/release/sessionvisor
worker=$root/target/release/sessionvisor-worker
agent=$root/worker/examples/echo_agent.py
host=$root/worker/python/handler_host.py
out=$root/target/bench
mkdir -p "$out"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
chmod 0755 "$scratch"

# Small helpers in Python (standard library only).
cat >"$scratch/tool.py" <<'PY'
import json, os, statistics, subprocess, sys, time

def field(path, dotted):
    try:
        value = json.load(open(path))
        for key in dotted.split("."):
            value = value[key]
        return value
    except Exception:
        return None

def pingpong(mode, n, cmd):
    """p50 of n sequential round trips, after 100 to warm up, in microseconds."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, bufsize=0)
    if mode == "run":
        line = json.dumps({"session_id": "bench", "action": "echo", "message": "ping"})
    else:
        line = json.dumps({"id": 1, "event": {"session_id": "bench", "action": "echo",
                           "message": "ping"}, "context": {"session_id": "bench",
                           "request_id": "r", "deadline_ms": 0}})
    line = (line + "\n").encode()
    reader = os.fdopen(proc.stdout.fileno(), "rb", buffering=65536, closefd=False)
    fd = proc.stdin.fileno()
    times = []
    for i in range(n + 100):
        start = time.perf_counter_ns()
        os.write(fd, line)
        if not reader.readline():
            raise SystemExit(f"{cmd[0]} closed its output")
        if i >= 100:
            times.append((time.perf_counter_ns() - start) / 1000)
    proc.stdin.close()
    proc.wait(timeout=30)
    return statistics.median(times)

command = sys.argv[1]
if command == "field":
    value = field(sys.argv[2], sys.argv[3])
    print("" if value is None else value)
elif command == "median":
    values = [float(v) for v in sys.stdin.read().split() if v]
    print(statistics.median(values) if values else "")
elif command == "pingpong":
    print(round(pingpong(sys.argv[2], int(sys.argv[3]), sys.argv[4:]), 1))
elif command == "row":
    # what, sessionvisor, baseline, unit, target ("<=1.5x" or ">=20000" ...)
    what, ours, base, unit, target = sys.argv[2:7]
    def show(v):
        return "n/a" if v == "" else f"{float(v):,.1f} {unit}".strip()
    if ours == "" or (target.endswith("x") and base == ""):
        print(f"| {what} | {show(ours)} | {show(base)} | n/a | {target} | not measured |")
        raise SystemExit
    op, bound = target[:2], float(target[2:].rstrip("x"))
    value = float(ours) / float(base) if target.endswith("x") else float(ours)
    met = value <= bound if op == "<=" else value >= bound
    ratio = f"{value:.2f}x" if target.endswith("x") else f"{value:,.0f}"
    verdict = "yes" if met else f"NO ({value / bound:.2f}x the target)"
    print(f"| {what} | {show(ours)} | {show(base) if base else '-'} | {ratio} | {target} | {verdict} |")
PY
tool() { python3 "$scratch/tool.py" "$@"; }

# `stress --json` with its report kept as target/bench/NAME.json; prints nothing.
stress() {
  local name=$1
  shift
  rm -rf "$scratch/state"
  "$bin" stress --json --state-dir "$scratch/state" "$@" >"$out/$name.json" 2>"$out/$name.stderr"
  local code=$?
  if [ "$code" != 0 ]; then
    echo "bench: stress $name exited $code: $(tail -n 3 "$out/$name.stderr")" >&2
  fi
}

# Median over RUNS single-session runs of the cold start through `--isolation none -- CMD`.
baseline_cold() {
  local name=$1 runs=$2
  shift 2
  for i in $(seq "$runs"); do
    stress "$name-$i" --isolation none --sessions 1 --events 1 "$@"
    tool field "$out/$name-$i.json" cold_start_us.p50
  done | tool median
}

echo "== sessionvisor bench, $(date -u +%F), $(nproc) cores, kernel $(uname -r), uid $(id -u)"

echo "-- cold start, native worker"
stress cold-native --sessions 40 --events 1 --concurrency 1 --worker native
cold_native=$(tool field "$out/cold-native.json" cold_start_us.p50)
cold_bwrap=""
if command -v bwrap >/dev/null; then
  cold_bwrap=$(baseline_cold cold-bwrap 25 --worker native -- \
    bwrap --unshare-all --share-net --ro-bind / / --tmpfs /tmp --die-with-parent "$worker")
fi

echo "-- cold start, Python handler"
stress cold-python --sessions 20 --events 1 --concurrency 1 --worker python
cold_python=$(tool field "$out/cold-python.json" cold_start_us.p50)
cold_python_plain=$(baseline_cold cold-python-plain 15 --worker python)

echo "-- warm round trip through run, and the raw pipe floor (native worker)"
warm_run=$(tool pingpong run 3000 "$bin" run --state-dir "$scratch/run-state" -- "$worker")
warm_floor=$(tool pingpong raw 3000 "$worker")

echo "-- throughput, 100 sessions"
stress throughput --sessions 100 --events 1000 --concurrency 100 --worker native
throughput=$(tool field "$out/throughput.json" throughput_eps)

echo "-- 100 sessions created at once"
stress burst --sessions 100 --events 1 --concurrency 100 --worker native
burst_p50=$(tool field "$out/burst.json" cold_start_us.p50)
burst_p99=$(tool field "$out/burst.json" cold_start_us.p99)

echo "-- 1,000 live sessions"
stress live-1000 --sessions 1000 --events 2 --concurrency 50 --worker native
rss=$(tool field "$out/live-1000.json" supervisor_peak_rss_bytes)
rss_mib=""
[ -n "$rss" ] && rss_mib=$(python3 -c "print($rss / 1048576)")

pool_rows=""
if "$bin" run --help | grep -q -- '--warm-pool'; then
  echo "-- Python cold start with --warm-pool 4 (sessions arrive every 300 ms)"
  stress pool-off --sessions 12 --events 1 --concurrency 1 --worker python --session-interval 300ms
  stress pool-on --sessions 12 --events 1 --concurrency 1 --worker python --session-interval 300ms --warm-pool 4
  pool_off=$(tool field "$out/pool-off.json" cold_start_us.p50)
  pool_on=$(tool field "$out/pool-on.json" cold_start_us.p50)
  pool_rows=$(tool row "cold start, Python, --warm-pool 4 vs none (p50)" "$pool_on" "$pool_off" "µs" "<=0.1x")
fi

echo
echo "| what | sessionvisor | baseline | ratio | target | met? |"
echo "|---|---|---|---|---|---|"
tool row "cold start, native worker (p50) vs bwrap + same worker" "$cold_native" "$cold_bwrap" "µs" "<=1.5x"
tool row "cold start, Python handler (p50) vs plain handler_host.py" "$cold_python" "$cold_python_plain" "µs" "<=1.1x"
tool row "warm round trip through run (p50) vs raw pipe ping-pong" "$warm_run" "$warm_floor" "µs" "<=3x"
tool row "throughput, 100 sessions, native (events/s)" "$throughput" "" "" ">=20000"
tool row "100 sessions at once: cold start p99 vs p50" "$burst_p99" "$burst_p50" "µs" "<=5x"
tool row "1,000 live sessions: supervisor peak RSS" "$rss_mib" "" "MiB" "<=64"
[ -n "$pool_rows" ] && echo "$pool_rows"

echo
echo "raw figures (µs unless named; full reports in target/bench/*.json):"
for name in cold-native cold-python throughput burst live-1000 pool-off pool-on; do
  [ -f "$out/$name.json" ] || continue
  python3 - "$out/$name.json" "$name" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
def p(key):
    v = r.get(key) or {}
    return "/".join(str(v.get(k, "-")) for k in ("p50", "p90", "p99", "max"))
m = r.get("memory_per_session") or {}
mib = lambda b: "n/a" if b is None else f"{b / 1048576:.2f} MiB"
print(f"  {sys.argv[2]:<12} {r['sessions']}x{r['events_per_session']} c={r['concurrency']} "
      f"{r['verdict']}: ok {r['ok']} errors {sum(r['errors'].values())} misroutes {r['misroutes']} "
      f"leaks {r['leaks']}; cold p50/p90/p99/max {p('cold_start_us')}; warm {p('warm_round_trip_us')}; "
      f"{r['throughput_eps']:.0f} events/s; peak RSS {mib(r.get('supervisor_peak_rss_bytes'))}; "
      f"per session Pss {mib(m.get('pss_bytes'))} (anon {mib(m.get('pss_anon_bytes'))}), "
      f"host used {mib(m.get('host_used_bytes'))}")
PY
done
echo "  baseline cold starts (p50 of each single-session run):"
for name in cold-bwrap cold-python-plain; do
  values=$(for f in "$out/$name"-*.json; do [ -f "$f" ] && tool field "$f" cold_start_us.p50; done | tr '\n' ' ')
  echo "    $name: $values"
done
echo "  warm round trip p50: run $warm_run, raw pipe $warm_floor (3,000 sequential, one session)"
