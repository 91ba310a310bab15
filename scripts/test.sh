#!/usr/bin/env bash
# The whole test suite. As root it runs every isolation test twice (the
# supervisor as root, and as uid 65534: rootless), then runs the isolation tests
# once more with the test process itself unprivileged, as on a laptop.
set -euo pipefail
cd "$(dirname "$0")/.."

# Sandboxed workers run under unprivileged uids and exec binaries and scripts
# from this tree. If such a uid cannot reach the tree (a clone under /root, or in
# a 0700 mktemp directory), test from a copy in a world-searchable place.
if [ "$(id -u)" = 0 ] && [ -z "${SESSIONVISOR_TEST_RELOCATED:-}" ] \
   && ! setpriv --reuid=65534 --regid=65534 --clear-groups test -x "$PWD/scripts/test.sh" 2>/dev/null; then
  # Not under /tmp or /var/tmp: those are private inside every session.
  copy=/var/lib/sessionvisor-test
  echo "== $PWD is not reachable by unprivileged uids; testing from a copy in $copy =="
  mkdir -p "$copy" && chmod 0755 "$copy"
  # A fresh copy of the tree (files deleted here must not linger there); the
  # build directory is kept to spare a rebuild.
  find "$copy" -mindepth 1 -maxdepth 1 ! -name target -exec rm -rf {} +
  tar --exclude=./target -cf - . | (cd "$copy" && tar -xf -)
  chmod -R go+rX "$copy"
  export CARGO_TARGET_DIR="$copy/target" SESSIONVISOR_TEST_RELOCATED=1
  exec "$copy/scripts/test.sh" "$@"
fi

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
