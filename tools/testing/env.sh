# Shared settings for the build and VM scripts; sourced, not run.
# The kernel toolchain is pinned: Debian's rustc-web 1.85 and clang 16.
KDBUS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KDBUS_CACHE=${KDBUS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kdbus}
KERNEL_TARBALL=/usr/src/linux-source-6.12.tar.xz
KMAKE_ARGS=(LLVM=-16 RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
            RUSTFMT="$(command -v rustfmt || echo rustfmt)"
            BINDGEN="$(command -v bindgen || echo bindgen)"
            RUST_LIB_SRC=/usr/lib/rustlib/src/rust/library)
export PATH="$HOME/.cargo/bin:$PATH"

# kernel_dir FLAVOUR: prints the cached build directory of that flavour,
# keyed by every input of the build.
kernel_key() {
  local flavour=$1
  {
    dpkg-query -W -f='${Version}\n' linux-source-6.12
    cat "$KDBUS_ROOT/tools/testing/kernel/base.config" \
        "$KDBUS_ROOT/tools/testing/kernel/$flavour.config" \
        "$KDBUS_ROOT/tools/testing/build-kernel.sh"
    clang-16 --version | head -1
    /usr/bin/rustc --version
    bindgen --version
  } | sha256sum | cut -c1-16
}
kernel_dir() { echo "$KDBUS_CACHE/kernel-$1-$(kernel_key "$1")"; }
