//! The measurement machinery of `kdbus-bench` (kdbus against AF_UNIX in
//! one process, threads) and `kdbus-bench-peers` (method calls between
//! processes through kdbus, dbus-daemon and dbus-broker): transports,
//! time-bounded loops, statistics and formatting.

pub mod clock;
pub mod data;
pub mod fanout;
pub mod kbench;
pub mod report;
pub mod sock;
pub mod timing;
