# kdbus: D-Bus IPC in the kernel, as an out-of-tree Rust module.
#
#   make demo    the main job: build everything, boot the VM, show a bus working
#   make check   every test: host tests, then the VM suite on the debug kernel
#   make bench   kdbus-bench in the release VM (ratios against AF_UNIX, name vs id, fan-out vs unicast),
#                then method calls between processes through kdbus, dbus-daemon and dbus-broker
#                (kdbus-bench-peers) in the same VM and, the brokers only, on the host
#   make fuzz    kdbus-fuzz in the debug VM for DURATION seconds (default 60)
#
# (The module itself is built by Kbuild: `make -C <kernel> M=$(CURDIR)` reads
# ./Kbuild, not this file; tools/testing/build-module.sh does that.)

T := tools/testing

.PHONY: all demo check bench fuzz setup kernel module userspace clippy fmt clean

all: module userspace

demo:
	bash $(T)/demo.sh

check:
	bash $(T)/check.sh

bench:
	bash $(T)/bench.sh

DURATION ?= 60

fuzz:
	bash $(T)/fuzz.sh --duration $(DURATION)

setup:
	bash $(T)/setup-host.sh

FLAVOUR ?= debug

kernel: setup
	bash $(T)/build-kernel.sh $(FLAVOUR)

module: setup
	KDBUS_CLIPPY=$(CLIPPY) bash $(T)/build-module.sh $(FLAVOUR)

userspace:
	bash $(T)/build-userspace.sh --workspace

clippy:
	cargo clippy --workspace --all-targets -- -D warnings
	KDBUS_CLIPPY=1 bash $(T)/build-module.sh $(FLAVOUR)

fmt:
	cargo fmt --all
	rustfmt --edition 2021 --config-path kdbus/.rustfmt.toml kdbus/kdbus_main.rs

clean:
	rm -rf build target kdbus/*.o kdbus/*.ko kdbus/.*.cmd kdbus/*.mod* kdbus/*generated.rs
