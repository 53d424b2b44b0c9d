//! `kdbus-demo`: makes a bus on a mounted kdbusfs, connects two peers and
//! shows what the kernel handed back: ids, the bus UUID, and the bloom
//! parameters read from each peer's read-only pool mapping.
//!
//! Usage: `kdbus-demo [MOUNT]` (default `/sys/fs/kdbus`).

use kdbus::{monotonic_ns, uapi, Bus, BusMaker, Connection, Control, MsgBuilder};
use std::process::ExitCode;

const POOL_SIZE: u64 = 16 * 1024 * 1024;

fn uuid(b: &[u8; 16]) -> String {
    let hex: Vec<String> = b.iter().map(|x| format!("{x:02x}")).collect();
    let h = hex.concat();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn show_peer(label: &str, c: &Connection) -> Result<(), String> {
    let r = c.hello_reply();
    println!(
        "{label}: HELLO ok, unique name :1.{} (id {})",
        c.id(),
        c.id()
    );
    println!(
        "{label}:   bus uuid {}, bus flags {:#x}",
        uuid(&c.id128()),
        c.bus_flags()
    );
    let items = c
        .pool_items(r.offset, r.items_size)
        .ok_or("HELLO slice outside the pool mapping")?;
    for item in items {
        let item = item.map_err(|e| format!("bad item in pool: {e:?}"))?;
        if item.ty == uapi::KDBUS_ITEM_BLOOM_PARAMETER as u64 {
            let p = item.payload;
            let size = u64::from_ne_bytes(p[0..8].try_into().unwrap());
            let n_hash = u64::from_ne_bytes(p[8..16].try_into().unwrap());
            println!(
                "{label}:   pool {} MiB mapped read-only; slice at offset {} ({} bytes): \
                 BLOOM_PARAMETER size={size} n_hash={n_hash}",
                c.pool_size() >> 20,
                r.offset,
                r.items_size
            );
        }
    }
    c.free(r.offset).map_err(|e| format!("FREE: {e}"))?;
    Ok(())
}

/// A asks B a question with a synchronous method call; B answers it.
fn call_and_reply(a: &Connection, b: &Connection) -> Result<(), String> {
    let question = b"ping from A";
    let call = MsgBuilder::new(b.id())
        .cookie(1)
        .call(monotonic_ns() + 5_000_000_000)
        .vec(question);
    std::thread::scope(|s| {
        let server = s.spawn(|| -> Result<(), String> {
            // Wait for the call, then answer it.
            let got = loop {
                match b.recv(0, 0) {
                    Ok(r) => break r,
                    Err(kdbus::Errno::EAGAIN) => {
                        std::thread::sleep(std::time::Duration::from_millis(1))
                    }
                    Err(e) => return Err(format!("RECV (peer B): {e}")),
                }
            };
            let m = got.message().map_err(|e| format!("parse: {e}"))?;
            let data = m.data().map_err(|e| format!("payload: {e}"))?;
            println!(
                "peer B: RECV call from :1.{} cookie {} at pool offset {} ({} bytes): {:?}",
                m.src_id,
                m.cookie,
                got.offset(),
                got.info().msg_size,
                String::from_utf8_lossy(&data)
            );
            let reply = MsgBuilder::new(m.src_id)
                .cookie_reply(m.cookie)
                .cookie(2)
                .vec(b"pong from B");
            got.free().map_err(|e| format!("FREE: {e}"))?;
            b.send(&reply, 0).map_err(|e| format!("SEND reply: {e}"))?;
            Ok(())
        });
        let r = a
            .send_sync(&call)
            .map_err(|e| format!("SEND sync call: {e}"))?;
        let m = a
            .message(&r.reply)
            .map_err(|e| format!("parse reply: {e}"))?;
        let data = m.data().map_err(|e| format!("reply payload: {e}"))?;
        println!(
            "peer A: sync call answered by :1.{}: {:?} (reply at pool offset {})",
            m.src_id,
            String::from_utf8_lossy(&data),
            r.reply.offset
        );
        a.free(r.reply.offset)
            .map_err(|e| format!("FREE reply: {e}"))?;
        server
            .join()
            .map_err(|_| "server thread panicked".to_string())?
    })
}

fn run(mount: &str) -> Result<(), String> {
    let euid = nix::unistd::geteuid();
    let name = format!("{euid}-demo");
    let control = Control::open(mount).map_err(|e| format!("open {mount}/control: {e}"))?;
    let bus: Bus = BusMaker::new(&name)
        .bloom(64, 8)
        .flags(uapi::KDBUS_MAKE_ACCESS_WORLD as u64)
        .make(control)
        .map_err(|e| format!("BUS_MAKE {name}: {e}"))?;
    println!("bus created: {}", bus.endpoint().display());
    let a = Connection::hello(bus.endpoint(), 0, 0, 0, POOL_SIZE)
        .map_err(|e| format!("HELLO (peer A): {e}"))?;
    let b = Connection::hello(
        bus.endpoint(),
        uapi::KDBUS_HELLO_ACCEPT_FD as u64,
        0,
        0,
        POOL_SIZE,
    )
    .map_err(|e| format!("HELLO (peer B): {e}"))?;
    show_peer("peer A", &a)?;
    show_peer("peer B", &b)?;
    if a.id128() != b.id128() || b.id() <= a.id() {
        return Err("peers disagree on the bus or ids are not increasing".into());
    }
    call_and_reply(&a, &b)?;
    a.byebye().map_err(|e| format!("BYEBYE: {e}"))?;
    println!("peer A: BYEBYE ok");
    drop(b);
    let dir = bus.dir();
    drop(bus);
    if dir.exists() {
        return Err(format!(
            "{} still exists after closing the bus owner",
            dir.display()
        ));
    }
    println!("bus owner closed: {} is gone", dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let mount = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "/sys/fs/kdbus".into());
    match run(&mount) {
        Ok(()) => {
            println!("kdbus-demo: OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("kdbus-demo: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}
