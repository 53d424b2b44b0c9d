#!/usr/bin/env bash
# Install everything the build, the VM and the tests need on a Debian 12 host.
# Idempotent: packages and tools already present are not touched again.
set -euo pipefail

RUST_WEB_VERSION=1.85.0+dfsg3-1~deb12u3
BINDGEN_VERSION=0.70.1

pkgs=(
  linux-source-6.12
  clang-16 lld-16 llvm-16 libclang-16-dev
  flex bison libelf-dev libssl-dev bc cpio kmod
  busybox-static qemu-system-x86
  dbus-daemon dbus-bin dbus-broker libsystemd-dev
  "rustc-web=$RUST_WEB_VERSION" "rust-web-src=$RUST_WEB_VERSION"
  "libstd-rust-web-dev=$RUST_WEB_VERSION" "libstd-rust-web-1.85=$RUST_WEB_VERSION"
  "rust-web-clippy=$RUST_WEB_VERSION"
)

missing=()
for p in "${pkgs[@]}"; do
  name=${p%%=*}
  want=${p#*=}
  have=$(dpkg-query -W -f='${Status} ${Version}' "$name" 2>/dev/null || true)
  case "$have" in
    "install ok installed "*)
      [ "$name" = "$p" ] || [ "${have##* }" = "$want" ] || missing+=("$p") ;;
    *) missing+=("$p") ;;
  esac
done

if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! { command -v bindgen >/dev/null && bindgen --version | grep -q " $BINDGEN_VERSION"; }; then
  echo "setup: installing bindgen-cli $BINDGEN_VERSION"
  cargo install bindgen-cli --version "$BINDGEN_VERSION" --locked --quiet
fi
echo "setup: host ready"
