#!/usr/bin/env bash
# The whole test suite. As root it runs every isolation test twice (the
# supervisor as root, and as uid 65534: rootless), then runs the isolation tests
# once more with the test process itself unprivileged, as on a laptop.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --workspace --all-targets "$@"

if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  echo "== isolation tests again, the test process itself unprivileged (uid 65534) =="
  bin=$(cargo test --test isolation --no-run --message-format=json 2>/dev/null \
        | python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "isolation" and m.get("executable"):
        print(m["executable"])')
  scratch=$(mktemp -d)
  chmod 0777 "$scratch"
  TMPDIR="$scratch" HOME="$scratch" setpriv --reuid=65534 --regid=65534 --clear-groups \
    env -u XDG_RUNTIME_DIR "$bin" --test-threads=2
  rm -rf "$scratch"
fi
