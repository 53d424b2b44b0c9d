//! The client: finds `org.example.Echo`'s owner, calls `Echo(s, u)` on it
//! by name with typed arguments and shows the typed replies, then two
//! calls that fail with D-Bus errors (an unknown method, a name nobody
//! owns). With `--quit` it asks the service to exit instead and watches
//! the name's `NameOwnerChanged`.
//!
//! ```sh
//! echo-client [--bus ENDPOINT] [--quit]
//! ```

use std::time::Duration;

use kdbus_bus_demo::{address, fail, say, IFACE, NAME, PATH};
use kdbus_client::{Connection, ConnectionBuilder, Message};

const WHO: &str = "echo-client";

fn echo(conn: &Connection, text: &str, times: u32) -> kdbus_client::Result<()> {
    say(WHO, format!("calls {NAME} Echo(s {text:?}, u {times})"));
    let reply = conn.call_method(NAME, PATH, Some(IFACE), "Echo", &(text, times))?;
    let (echoed, len): (String, u32) = reply.body()?;
    let pid = reply.metadata().pid().map_or("?".into(), |p| p.to_string());
    say(
        WHO,
        format!(
            "reply ({}) from {} (pid {pid}): ({echoed:?}, {len})",
            reply.signature(),
            reply.sender().unwrap_or("?")
        ),
    );
    Ok(())
}

fn show_error(what: &str, r: kdbus_client::Result<Message>) {
    match r {
        Err(e) => say(
            WHO,
            format!(
                "{what} -> {}: {}",
                e.name(),
                e.message().unwrap_or_default()
            ),
        ),
        Ok(m) => fail(WHO, format!("{what} succeeded: {:?}", m.signature())),
    }
}

fn calls(conn: &Connection) -> kdbus_client::Result<()> {
    let owner = conn.get_name_owner(NAME)?;
    say(
        WHO,
        format!(
            "connected as {} (pid {}, uid {}); GetNameOwner({NAME}) = {owner}",
            conn.unique_name(),
            std::process::id(),
            nix::unistd::getuid()
        ),
    );
    echo(conn, "hello", 2)?;
    echo(conn, "bye", 1)?;
    show_error(
        "Shout()",
        conn.call_method(NAME, PATH, Some(IFACE), "Shout", &()),
    );
    show_error(
        "org.example.Nobody Echo()",
        conn.call_method(
            "org.example.Nobody",
            PATH,
            Some(IFACE),
            "Echo",
            &("x", 1u32),
        ),
    );
    Ok(())
}

fn quit(conn: &Connection) -> kdbus_client::Result<()> {
    let owner = conn.get_name_owner(NAME)?;
    conn.watch_name_owner(Some(NAME))?;
    say(WHO, format!("calls {NAME} ({owner}) Quit()"));
    conn.call_method(NAME, PATH, Some(IFACE), "Quit", &())?;
    loop {
        let Some(m) = conn.receive(Some(Duration::from_secs(10)))? else {
            fail(WHO, "no NameOwnerChanged after Quit()")
        };
        if let Some(c) = m.name_owner_changed() {
            say(
                WHO,
                format!(
                    "signal NameOwnerChanged({:?}, {:?}, {:?}) (from the kernel's NAME_REMOVE)",
                    c.name,
                    c.old_owner.as_deref().unwrap_or(""),
                    c.new_owner.as_deref().unwrap_or("")
                ),
            );
            if c.name == NAME && c.new_owner.is_none() {
                break;
            }
        }
    }
    say(
        WHO,
        format!("NameHasOwner({NAME}) = {}", conn.name_has_owner(NAME)?),
    );
    Ok(())
}

fn main() {
    let r = ConnectionBuilder::address(address())
        .description("echo-client")
        .build()
        .and_then(|conn| {
            if std::env::args().any(|a| a == "--quit") {
                quit(&conn)
            } else {
                calls(&conn)
            }
        });
    if let Err(e) = r {
        fail(
            WHO,
            format!("{} ({})", e.name(), e.message().unwrap_or_default()),
        );
    }
}
