#!/usr/bin/env bash
# The main job: build everything (release kernel, kdbus.ko, the demo), boot
# the VM with kdbus=1 and show a bus at work.
set -euo pipefail
. "$(dirname "$0")/env.sh"
cd "$KDBUS_ROOT"
bash tools/testing/setup-host.sh
bash tools/testing/build-kernel.sh release >/dev/null
ko=$(bash tools/testing/build-module.sh release)
bin=$(bash tools/testing/build-userspace.sh -p kdbus-demo -p kdbus-test)
mkdir -p build/demo
cat > build/demo/run.sh <<'RUN'
#!/bin/sh
echo "--- kdbusfs mounted:"; grep kdbusfs /proc/mounts; ls -l /sys/fs/kdbus
kdbus-demo
RUN
bash tools/testing/vm/mkinitramfs.sh build/demo/demo.cpio.gz --module "$ko" \
  --bin "$bin/kdbus-demo" --run build/demo/run.sh >/dev/null
exec bash tools/testing/vm/run-vm.sh --flavour release --initrd build/demo/demo.cpio.gz \
  --cmdline "kdbus=1 kdbus.kmemleak=0 quiet" --timeout 300
