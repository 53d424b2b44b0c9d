//! Stand-in for `sdbus.rs` in a static build (`-C target-feature=+crt-static`,
//! as `make userspace` builds the workspace): libsystemd ships no static
//! library, so the dbus-daemon and dbus-broker measurements report this
//! instead. tools/testing/bench.sh builds the dynamic binary.

use kdbus_bench::timing::Failure;

use crate::transport::Peer;

const WHY: &str = "this kdbus-bench-peers is statically linked; sd-bus (libsystemd) \
                   needs the dynamic build (cargo build -p kdbus-bench --bin kdbus-bench-peers)";

pub struct Client;

impl Client {
    pub fn connect(_address: &str, who: &str) -> Result<Client, Failure> {
        Err(Failure::bad("sd-bus", who, WHY))
    }
}

impl Peer for Client {
    fn call(&mut self, _payload: &[u8]) -> Result<(), Failure> {
        Err(Failure::bad("sd-bus", "client", WHY))
    }
}

pub fn serve(_address: &str) -> Result<(), Failure> {
    Err(Failure::bad("sd-bus", "server", WHY))
}
