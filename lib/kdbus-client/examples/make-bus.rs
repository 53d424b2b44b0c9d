//! Makes a bus (default `0-system`) on `/sys/fs/kdbus` and keeps it until
//! killed: the bus lives as long as its owner's handle is open. For trying
//! the echo examples in the test VM.
//!
//! ```sh
//! make-bus [NAME]
//! ```

fn main() {
    let name = std::env::args().nth(1).unwrap_or_else(|| "0-system".into());
    let control = kdbus::Control::open("/sys/fs/kdbus").expect("open /sys/fs/kdbus/control");
    let bus = kdbus::BusMaker::new(name)
        .flags(kdbus::consts::MAKE_ACCESS_WORLD)
        .make(control)
        .expect("BUS_MAKE");
    println!("make-bus: {}", bus.endpoint().display());
    loop {
        std::thread::park();
    }
}
