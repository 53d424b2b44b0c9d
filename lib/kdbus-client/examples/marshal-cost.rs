//! What the library's D-Bus marshalling costs per message, without a bus:
//! building an `Echo(ay)` call (the body through zvariant), encoding its
//! GVariant header and decoding the whole message, for 8 B and 64 KiB.
//! A kdbus round trip of `kdbus-bench-peers`' `kdbus-dbus` transport does
//! each of these twice (call and reply). The bytes as `Vec<u8>` go through
//! serde's sequence path (one call per byte); `serde_bytes` (what
//! `kdbus-bench-peers` uses) marshals them as one block.
//!
//! ```sh
//! cargo run --release -p kdbus-client --example marshal-cost
//! ```

use std::time::Instant;

use kdbus_client::{wire, Message};

fn per_op(n: u32, mut f: impl FnMut()) -> f64 {
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed().as_secs_f64() / f64::from(n) * 1e6
}

fn main() -> kdbus_client::Result<()> {
    let n = 2000;
    for len in [8usize, 4096, 65536] {
        let payload = vec![7u8; len];
        let call = || {
            Message::method_call("/org/kdbus/bench", "Echo")
                .destination("org.kdbus.bench.Echo")
                .interface("org.kdbus.bench.Echo")
        };
        let m = call().build(&payload)?;
        let mut h = m.header().clone();
        h.cookie = 1;
        let enc = wire::encode(&h, m.body_bytes())?;
        let bv = per_op(n, || drop(std::hint::black_box(call().build(&payload))));
        let bb = per_op(n, || {
            drop(std::hint::black_box(
                call().build(&serde_bytes::Bytes::new(&payload)),
            ))
        });
        let e = per_op(n, || {
            drop(std::hint::black_box(wire::encode(&h, m.body_bytes())))
        });
        let d = per_op(n, || drop(std::hint::black_box(wire::decode(&enc.bytes))));
        let uv = per_op(n, || drop(std::hint::black_box(m.body::<Vec<u8>>())));
        let ub = per_op(n, || {
            drop(std::hint::black_box(m.body::<serde_bytes::ByteBuf>()))
        });
        println!(
            "{len:>6} B: build {bv:7.1} µs (serde_bytes {bb:6.1}), header encode {e:5.1} µs, \
             decode {d:5.1} µs, body {uv:7.1} µs (serde_bytes {ub:5.1})"
        );
    }
    Ok(())
}
