//! The echo client: waits for `org.example.Echo`, subscribes to its
//! `Echoed` signal, calls `Echo` synchronously and asynchronously, shows
//! a D-Bus error, then asks the service to quit and watches the name go.
//!
//! ```sh
//! echo-client [ENDPOINT|ADDRESS]   # default: the system bus
//! ```

use std::time::Duration;

use kdbus_client::error::names as err;
use kdbus_client::{Address, ConnectionBuilder, Message};

const NAME: &str = "org.example.Echo";
const PATH: &str = "/org/example/Echo";
const IFACE: &str = "org.example.Echo";

fn address() -> Address {
    match std::env::args().nth(1) {
        Some(a) if a.contains(':') => Address::parse(&a).expect("bad address"),
        Some(p) => Address::path(p),
        None => Address::system(),
    }
}

fn fail(what: &str) -> ! {
    eprintln!("echo-client: FAILED: {what}");
    std::process::exit(1)
}

fn main() -> kdbus_client::Result<()> {
    let conn = ConnectionBuilder::address(address())
        .description("echo-client")
        .build()?;
    println!(
        "echo-client: connected as {} to bus {}",
        conn.unique_name(),
        conn.bus_id()
    );

    // Wait for the service: NameOwnerChanged comes from the kernel's
    // notifications.
    let watch = conn.watch_name_owner(Some(NAME))?;
    if !conn.name_has_owner(NAME)? {
        println!("echo-client: waiting for {NAME}");
        loop {
            let Some(m) = conn.receive(Some(Duration::from_secs(10)))? else {
                fail("the service did not appear")
            };
            if let Some(c) = m.name_owner_changed() {
                if c.name == NAME && c.new_owner.is_some() {
                    break;
                }
            }
        }
    }
    let owner = conn.get_name_owner(NAME)?;
    println!("echo-client: {NAME} is owned by {owner}");
    println!("echo-client: names on the bus: {:?}", conn.list_names()?);

    conn.add_match(&format!(
        "type='signal',sender='{NAME}',interface='{IFACE}',member='Echoed',path='{PATH}'"
    ))?;

    // A synchronous call.
    let reply = conn.call_method(NAME, PATH, Some(IFACE), "Echo", &("hello kdbus",))?;
    let echoed: String = reply.body()?;
    println!(
        "echo-client: Echo(\"hello kdbus\") = {echoed:?} from {} (pid {:?}, names {:?})",
        reply.sender().unwrap_or("?"),
        reply.metadata().pid(),
        reply.metadata().names
    );
    if echoed != "hello kdbus" {
        fail("wrong echo");
    }

    // An asynchronous call.
    let call = Message::method_call(PATH, "Echo")
        .destination(NAME)
        .interface(IFACE)
        .build(&("async",))?;
    let pending = conn.call_async(&call, Some(Duration::from_secs(5)))?;
    let r: String = conn.wait_reply(&pending)?.body()?;
    println!("echo-client: async Echo(\"async\") = {r:?}");

    // The broadcast signals of both calls, filtered by the match rule.
    let mut signals = Vec::new();
    while signals.len() < 2 {
        let Some(m) = conn.receive(Some(Duration::from_secs(5)))? else {
            fail("no Echoed signal")
        };
        if m.is_signal(IFACE, "Echoed") {
            let s: String = m.body()?;
            println!(
                "echo-client: signal Echoed({s:?}) from {}",
                m.sender().unwrap_or("?")
            );
            signals.push(s);
        }
    }

    // D-Bus errors: an unknown method, an unknown service.
    match conn.call_method(NAME, PATH, Some(IFACE), "Nope", &()) {
        Err(e) if e.is(err::UNKNOWN_METHOD) => println!("echo-client: Nope() -> {e}"),
        other => fail(&format!("Nope() gave {other:?}")),
    }
    match conn.call_method("org.example.Nobody", PATH, None, "Echo", &("x",)) {
        Err(e) if e.is(err::SERVICE_UNKNOWN) => println!("echo-client: org.example.Nobody -> {e}"),
        other => fail(&format!("unknown service gave {other:?}")),
    }
    match conn.get_name_owner("org.example.Nobody") {
        Err(e) if e.is(err::NAME_HAS_NO_OWNER) => println!("echo-client: GetNameOwner -> {e}"),
        other => fail(&format!("GetNameOwner gave {other:?}")),
    }

    // Stop the service and see its name go.
    conn.call_method(NAME, PATH, Some(IFACE), "Quit", &())?;
    loop {
        let Some(m) = conn.receive(Some(Duration::from_secs(10)))? else {
            fail("no NameOwnerChanged after Quit")
        };
        if let Some(c) = m.name_owner_changed() {
            println!(
                "echo-client: NameOwnerChanged({:?}, {:?}, {:?})",
                c.name, c.old_owner, c.new_owner
            );
            if c.name == NAME && c.new_owner.is_none() {
                break;
            }
        }
    }
    conn.remove_match(&watch)?;
    println!("echo-client: OK");
    Ok(())
}
