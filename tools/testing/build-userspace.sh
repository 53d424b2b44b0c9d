#!/usr/bin/env bash
# Build the static userspace binaries that go into the VM (glibc, crt-static).
# Prints the directory holding them.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$KDBUS_ROOT"
RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
  --target x86_64-unknown-linux-gnu "$@" >&2
echo "${CARGO_TARGET_DIR:-$KDBUS_ROOT/target}/x86_64-unknown-linux-gnu/release"
