//! The service of `tools/testing/vm/kdbusctl.sh`: owns NAME (and any
//! further names), answers on `/org/kdbusctl/Test`, interface
//! `org.kdbusctl.Test`:
//!
//! * `Echo(...)` returns its arguments unchanged (any signature) and then
//!   broadcasts the signal `Echoed` with the same arguments;
//! * `Fail()` answers the error `org.kdbusctl.Error.Failed`;
//! * `Quit()` answers and exits.
//!
//! ```sh
//! test-service ENDPOINT NAME [NAME...] [--queue]   # --queue: wait in the queue if taken
//! ```

use kdbus_client::{ConnectionBuilder, Message, MessageType, RequestNameFlags, RequestNameReply};
use zvariant::StructureBuilder;

const PATH: &str = "/org/kdbusctl/Test";
const IFACE: &str = "org.kdbusctl.Test";

fn same_body(call: &Message) -> kdbus_client::Result<Option<zvariant::Structure<'static>>> {
    let args = call.args()?;
    if args.is_empty() {
        return Ok(None);
    }
    let mut b = StructureBuilder::new();
    for a in args {
        b = b.append_field(zvariant::Value::from(a));
    }
    Ok(Some(b.build()?))
}

fn main() -> kdbus_client::Result<()> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let queue = args.iter().any(|a| a == "--queue");
    args.retain(|a| a != "--queue");
    let (Some(endpoint), names) = (args.first().cloned(), args.get(1..).unwrap_or_default()) else {
        eprintln!("usage: test-service ENDPOINT NAME [NAME...] [--queue]");
        std::process::exit(2);
    };
    let conn = ConnectionBuilder::path(&endpoint)
        .description("test-service")
        .build()?;
    let flags = if queue {
        RequestNameFlags::NONE
    } else {
        RequestNameFlags::DO_NOT_QUEUE
    };
    for n in names {
        let r = conn.request_name(n, flags)?;
        if r != RequestNameReply::PrimaryOwner && !(queue && r == RequestNameReply::InQueue) {
            eprintln!("test-service: could not own {n}: {r:?}");
            std::process::exit(1);
        }
        println!("test-service: {} {n}: {r:?}", conn.unique_name());
    }
    loop {
        let Some(call) = conn.receive(None)? else {
            continue;
        };
        if call.message_type() != MessageType::MethodCall {
            continue;
        }
        match call.member() {
            Some("Echo") => {
                let body = same_body(&call)?;
                let (reply, sig) = match &body {
                    Some(b) => (
                        Message::method_return(&call).build(b)?,
                        Message::signal(PATH, IFACE, "Echoed").build(b)?,
                    ),
                    None => (
                        Message::method_return(&call).build_empty()?,
                        Message::signal(PATH, IFACE, "Echoed").build_empty()?,
                    ),
                };
                if call.expects_reply() {
                    conn.send(&reply)?;
                }
                conn.send(&sig)?;
            }
            Some("Fail") => {
                conn.reply_error(&call, "org.kdbusctl.Error.Failed", "requested failure")?
            }
            Some("Quit") => {
                conn.reply(&call, &())?;
                return Ok(());
            }
            m => conn.reply_error(
                &call,
                kdbus_client::error::names::UNKNOWN_METHOD,
                &format!("Unknown method '{}'.", m.unwrap_or("")),
            )?,
        }
    }
}
