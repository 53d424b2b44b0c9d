#!/usr/bin/env bash
# The main job: build everything (release kernel, kdbus.ko, the demo
# programs of samples/bus-demo), boot the VM with kdbus=1 and show a bus at
# work: the story lines of tools/testing/vm/demo-run.sh, nothing of the
# boot. The whole serial console is kept in build/demo/vm.log.
#
# kdbusctl (steps 4 and 7) is included when the workspace builds a binary
# of that name, or from $KDBUSCTL (a static binary); else those steps say
# they were skipped.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$KDBUS_ROOT"
out=build/demo
mkdir -p "$out"
say() { echo "make demo: $*"; }
quietly() {  # quietly LOG COMMAND...: output to LOG, shown if it fails
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
    say "FAILED: $* (log: $log)"; tail -n 30 "$log"; exit 1
  fi
}

say "host setup, release kernel (cached after the first build), kdbus.ko, demo programs"
quietly "$out/setup.log" bash tools/testing/setup-host.sh
quietly "$out/kernel.log" bash tools/testing/build-kernel.sh release
quietly "$out/module.log" bash tools/testing/build-module.sh release
ko=$(tail -n 1 "$out/module.log")
quietly "$out/userspace.log" bash tools/testing/build-userspace.sh -p kdbus-bus-demo
bin=$(tail -n 1 "$out/userspace.log")

ctl=${KDBUSCTL:-}
if [ -z "$ctl" ] && cargo metadata --no-deps --format-version 1 2>/dev/null |
     grep -q '"name":"kdbusctl"'; then
  if bash tools/testing/build-userspace.sh --bin kdbusctl >"$out/kdbusctl.log" 2>&1; then
    ctl=$bin/kdbusctl
  else
    say "note: building kdbusctl failed (log: $out/kdbusctl.log); its steps are skipped"
  fi
fi
ctl_args=()
if [ -n "$ctl" ]; then
  # Installed under its own name whatever the file is called.
  mkdir -p "$out/ctl" && install -m 0755 "$ctl" "$out/ctl/kdbusctl"
  ctl_args=(--bin "$out/ctl/kdbusctl")
else
  rm -rf "$out/ctl"
fi

bins=()
for b in system-bus echo-service echo-client listener; do bins+=(--bin "$bin/$b"); done
quietly "$out/initramfs.log" bash tools/testing/vm/mkinitramfs.sh "$out/demo.cpio.gz" \
  --module "$ko" "${bins[@]}" ${ctl_args[@]+"${ctl_args[@]}"} --run tools/testing/vm/demo-run.sh

say "booting the release kernel with kdbus=1 (QEMU; the boot itself is in $out/vm.log)"
echo
set +e
bash tools/testing/vm/run-vm.sh --flavour release --initrd "$out/demo.cpio.gz" \
  --cmdline "kdbus=1 kdbus.kmemleak=0" --timeout 300 --log "$out/vm.log" 2>"$out/run-vm.log" |
  tr -d '\r' | sed -un 's/^.*demo| //p'
rc=${PIPESTATUS[0]}
set -e
echo
say "serial console log (boot, kernel messages, the unfiltered run): $out/vm.log"
say "$(grep -a -E 'run-vm: (PASS|FAIL)' "$out/run-vm.log" | tail -n 1 | sed 's/^run-vm: //')"
[ "$rc" = 0 ] || say "FAILED: run-vm.sh exited with status $rc (see $out/run-vm.log)"
exit "$rc"
