#!/usr/bin/env bash
# sessionvisor against real baselines, each measured in this same run, as
# ratios. Prints one table row per target (what | sessionvisor | baseline |
# ratio | target | met?), then the raw figures. Asserts nothing: it reports.
#
#   scripts/bench.sh            (as root, like CI; under 2 minutes on 2 cores)
#
# How each figure is taken:
# - Cold starts and warm round trips: one Python driver measures both sides
#   the same way. sessionvisor's side is `sessionvisor run`, timed from writing
#   a session's first line to reading its result (cold), or any later line
#   (warm). A baseline's side is the baseline command started by the driver
#   itself, timed from the spawn to its first reply frame (cold), or frame by
#   frame over plain pipes (warm: the floor).
# - Throughput, 100 sessions at once, 1,000 live sessions, and the warm pool
#   come from `sessionvisor stress`, whose reports are kept in target/bench/.
# - Python runs use one interpreter for both sides, and not a version
#   manager's shim (a shell script that would add its own start-up).
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
python=/usr/bin/python3
[ -x "$python" ] || python=$(command -v python3)
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

def coldstart(kind, n, interval, cmd):
    """Median time to a new session's first answer, in microseconds.

    run: cmd is a `sessionvisor run`; each sample is the first line of a new
    session. spawn: each sample starts cmd afresh and sends it one frame.
    Every session (or process) stays alive until the end, as sessions do.
    """
    frame = (json.dumps({"id": 1, "event": {"session_id": "s", "action": "echo",
             "message": "hi"}, "context": {"session_id": "s", "request_id": "r",
             "deadline_ms": 0}}) + "\n").encode()
    samples, procs = [], []
    if kind == "run":
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, bufsize=0)
        procs.append(proc)
        reader = os.fdopen(proc.stdout.fileno(), "rb", buffering=65536, closefd=False)
    for i in range(n + 1):
        time.sleep(interval)
        start = time.perf_counter_ns()
        if kind == "run":
            line = json.dumps({"session_id": f"cold-{i}", "action": "echo", "message": "hi"})
            os.write(proc.stdin.fileno(), (line + "\n").encode())
            answer = reader.readline()
        else:
            child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, bufsize=0)
            procs.append(child)
            os.write(child.stdin.fileno(), frame)
            answer = child.stdout.readline()
        elapsed = (time.perf_counter_ns() - start) / 1000
        if b'"statusCode":200' not in answer.replace(b" ", b""):
            raise SystemExit(f"{cmd[0]}: unexpected answer {answer[:200]!r}")
        if i > 0:  # the first one also starts the supervisor's machinery
            samples.append(elapsed)
    for proc in procs:
        proc.stdin.close()
    for proc in procs:
        proc.wait(timeout=60)
    return statistics.median(samples)

command = sys.argv[1]
if command == "field":
    value = field(sys.argv[2], sys.argv[3])
    print("" if value is None else value)
elif command == "median":
    values = [float(v) for v in sys.stdin.read().split() if v]
    print(statistics.median(values) if values else "")
elif command == "coldstart":
    print(round(coldstart(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5:]), 1))
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

echo "== sessionvisor bench, $(date -u +%F), $(nproc) cores, kernel $(uname -r), uid $(id -u)"

run_state=$scratch/run-state
nobody_home=$scratch/nobody
mkdir -p "$nobody_home" && chmod 0777 "$nobody_home"
bwrap_cmd=(bwrap --unshare-all --share-net --ro-bind / / --tmpfs /tmp --die-with-parent)
# Sessions arrive this far apart (as they do in use: the host idles between
# them), or back to back (0).
gap=0.05

# Runs a measurement ROUNDS times (the two sides of a ratio take turns, so
# both see the same host) and prints the median: idle vCPUs make single
# figures swing.
rounds() {
  local n=$1
  shift
  for _ in $(seq "$n"); do "$@"; done | tool median
}
# The same as uid 65534: rootless.
as_nobody() {
  setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -u XDG_RUNTIME_DIR HOME="$nobody_home" "$@"
}

echo "-- cold start, native worker: sessionvisor vs bwrap starting the same worker"
cold_native=$(rounds 3 tool coldstart run 30 "$gap" "$bin" run --state-dir "$run_state" -- "$worker")
cold_native_b2b=$(rounds 3 tool coldstart run 30 0 "$bin" run --state-dir "$run_state" -- "$worker")
cold_bwrap=""
cold_bwrap_b2b=""
if command -v bwrap >/dev/null; then
  cold_bwrap=$(rounds 3 tool coldstart spawn 30 "$gap" "${bwrap_cmd[@]}" "$worker")
  cold_bwrap_b2b=$(rounds 3 tool coldstart spawn 30 0 "${bwrap_cmd[@]}" "$worker")
fi

echo "-- cold start, Python handler: sessionvisor vs plain handler_host.py"
cold_python=$(rounds 3 tool coldstart run 12 "$gap" "$bin" run --state-dir "$run_state" \
  --python "$python" --handler "$agent:handler")
cold_python_plain=$(rounds 3 tool coldstart spawn 12 "$gap" "$python" "$host" "$agent:handler")

rootless_rows=()
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  echo "-- the same cold starts rootless (uid 65534)"
  rl_native=$(rounds 3 as_nobody python3 "$scratch/tool.py" coldstart run 30 "$gap" \
    "$bin" run --state-dir "$nobody_home/state" -- "$worker")
  rl_bwrap=""
  command -v bwrap >/dev/null &&
    rl_bwrap=$(rounds 3 as_nobody python3 "$scratch/tool.py" coldstart spawn 30 "$gap" \
      "${bwrap_cmd[@]}" "$worker")
  rl_python=$(rounds 3 as_nobody python3 "$scratch/tool.py" coldstart run 12 "$gap" \
    "$bin" run --state-dir "$nobody_home/state" --python "$python" --handler "$agent:handler")
  rl_python_plain=$(rounds 3 as_nobody python3 "$scratch/tool.py" coldstart spawn 12 "$gap" \
    "$python" "$host" "$agent:handler")
  rootless_rows+=("$(tool row "rootless: cold start, native worker (p50) vs bwrap + same worker" \
    "$rl_native" "$rl_bwrap" "µs" "<=1.5x")")
  rootless_rows+=("$(tool row "rootless: cold start, Python handler (p50) vs plain handler_host.py" \
    "$rl_python" "$rl_python_plain" "µs" "<=1.1x")")
fi

echo "-- warm round trip through run, and the raw pipe floor (native worker)"
warm_run=$(rounds 3 tool pingpong run 2000 "$bin" run --state-dir "$run_state" -- "$worker")
warm_floor=$(rounds 3 tool pingpong raw 2000 "$worker")

echo "-- cold start figures from stress (for reference)"
stress cold-native --sessions 40 --events 1 --concurrency 1 --worker native
stress cold-python --sessions 20 --events 1 --concurrency 1 --worker python --python "$python"

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
  stress pool-off --sessions 12 --events 1 --concurrency 1 --worker python --python "$python" \
    --session-interval 300ms
  stress pool-on --sessions 12 --events 1 --concurrency 1 --worker python --python "$python" \
    --session-interval 300ms --warm-pool 4
  pool_off=$(tool field "$out/pool-off.json" cold_start_us.p50)
  pool_on=$(tool field "$out/pool-on.json" cold_start_us.p50)
  pool_rows=$(tool row "cold start, Python, --warm-pool 4 vs none (p50)" "$pool_on" "$pool_off" "µs" "<=0.1x")
  echo "-- native cold start with --warm-pool 4, against the same bwrap baseline"
  pool_native=$(rounds 3 tool coldstart run 30 "$gap" "$bin" run --state-dir "$run_state" \
    --warm-pool 4 -- "$worker")
  pool_rows+=$'\n'$(tool row "cold start, native worker, --warm-pool 4 (p50) vs bwrap (not a target)" \
    "$pool_native" "$cold_bwrap" "µs" "<=1.5x")
fi

echo
echo "| what | sessionvisor | baseline | ratio | target | met? |"
echo "|---|---|---|---|---|---|"
tool row "cold start, native worker (p50) vs bwrap + same worker" "$cold_native" "$cold_bwrap" "µs" "<=1.5x"
tool row "cold start, native, sessions back to back (p50) vs bwrap" "$cold_native_b2b" "$cold_bwrap_b2b" "µs" "<=1.5x"
tool row "cold start, Python handler (p50) vs plain handler_host.py" "$cold_python" "$cold_python_plain" "µs" "<=1.1x"
for row in "${rootless_rows[@]}"; do echo "$row"; done
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
echo "  cold start p50 through the Python driver (median of 3 rounds; sessions one at a time," \
  "${gap}s apart unless back to back): run+native $cold_native, bwrap+native $cold_bwrap;" \
  "back to back: run+native $cold_native_b2b, bwrap+native $cold_bwrap_b2b;" \
  "run+python $cold_python, plain python $cold_python_plain"
[ -n "${pool_native:-}" ] && echo "  run+native with --warm-pool 4: $pool_native"
[ -n "${rl_native:-}" ] && echo "  rootless: run+native $rl_native, bwrap+native $rl_bwrap," \
  "run+python $rl_python, plain python $rl_python_plain"
echo "  warm round trip p50 (median of 3 rounds of 2,000 sequential, one session):" \
  "run $warm_run, raw pipe $warm_floor"
echo "  python: $python ($("$python" --version 2>&1)); bwrap: $(bwrap --version 2>/dev/null)"
