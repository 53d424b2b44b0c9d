#!/usr/bin/env bash
# Runs tools/testing/vm/kdbusctl.sh (kdbusctl against a live bus) in the debug
# VM: builds kdbus.ko (or takes KDBUS_KO=path), the static kdbusctl and its
# test-service, the initramfs, and boots it. Prints the VM's TAP lines and
# exits with the VM's status (0: every check passed and the kernel log is
# clean).
#
#   bash tools/testing/kdbusctl-vm.sh [--log FILE]
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$KDBUS_ROOT"
log=${TMPDIR:-/tmp}/kdbusctl-vm.log
[ "${1:-}" = --log ] && log=${2:?--log needs a file}
ko=${KDBUS_KO:-}
[ -n "$ko" ] || ko=$(bash tools/testing/build-module.sh debug)
bin=$(bash tools/testing/build-userspace.sh -p kdbusctl --bin kdbusctl --example test-service)
initrd=$(mktemp "${TMPDIR:-/tmp}/kdbusctl-vm.XXXXXX.cpio.gz")
trap 'rm -f "$initrd"' EXIT
bash tools/testing/vm/mkinitramfs.sh "$initrd" --module "$ko" --bin "$bin/kdbusctl" \
  --bin "$bin/examples/test-service" --run tools/testing/vm/kdbusctl.sh >/dev/null
rc=0
bash tools/testing/vm/run-vm.sh --flavour debug --initrd "$initrd" --cmdline "kdbus=1" \
  --timeout "${KDBUSCTL_VM_TIMEOUT:-600}" --log "$log" >/dev/null || rc=$?
grep -aE '^(ok|not ok) |^#|^[0-9]+ passed, [0-9]+ failed' "$log" || true
echo "kdbusctl-vm: run-vm status $rc (log: $log)" >&2
exit $rc
