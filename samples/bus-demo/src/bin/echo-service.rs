//! The echo service: owns `org.example.Echo` on the system bus and, on
//! `/org/example/Echo`, answers
//!
//! * `org.example.Echo.Echo(s text, u times) -> (s echoed, u length)`:
//!   `text` repeated `times` times (space-separated) and its length; before
//!   replying it broadcasts the signal `org.example.Echo.Echoed(s text,
//!   s caller)`;
//! * `org.example.Echo.Quit()`: replies, then exits (the kernel releases
//!   the name with the connection);
//!
//! and anything else with `org.freedesktop.DBus.Error.UnknownMethod`. For
//! every call it shows the caller's metadata as the kernel attached it.
//!
//! ```sh
//! echo-service [--bus ENDPOINT] [--ready FILE]
//! ```

use kdbus_bus_demo::{address, fail, opt, ready, say, IFACE, NAME, PATH};
use kdbus_client::error::names as err;
use kdbus_client::wire::MessageType;
use kdbus_client::{ConnectionBuilder, Message, RequestNameFlags, RequestNameReply};

const WHO: &str = "echo-service";

fn caller(call: &Message) -> String {
    let m = call.metadata();
    let opt = |v: Option<u32>| v.map_or("?".into(), |v| v.to_string());
    format!(
        "pid {}, uid {}, comm {:?}",
        opt(m.pid()),
        opt(m.creds.and_then(|c| c.uid)),
        m.pid_comm.as_deref().unwrap_or("?")
    )
}

fn run() -> kdbus_client::Result<()> {
    let conn = ConnectionBuilder::address(address())
        .description("echo-service")
        .build()?;
    match conn.request_name(NAME, RequestNameFlags::DO_NOT_QUEUE)? {
        RequestNameReply::PrimaryOwner => {}
        other => fail(WHO, format!("RequestName({NAME}) -> {other:?}")),
    }
    say(
        WHO,
        format!(
            "connected as {} (pid {}); RequestName({NAME}) -> PrimaryOwner",
            conn.unique_name(),
            std::process::id()
        ),
    );
    ready(opt("ready").as_deref());
    loop {
        let Some(call) = conn.receive(None)? else {
            continue;
        };
        if call.message_type() != MessageType::MethodCall {
            continue;
        }
        let from = call.sender().unwrap_or("?").to_string();
        if call.path() != Some(PATH) {
            conn.reply_error(&call, err::UNKNOWN_OBJECT, "No such object")?;
            continue;
        }
        match (call.interface(), call.member()) {
            (Some(IFACE) | None, Some("Echo")) => {
                let (text, times): (String, u32) = match call.body() {
                    Ok(b) => b,
                    Err(e) => {
                        conn.reply_error(&call, err::INVALID_ARGS, &e.to_string())?;
                        continue;
                    }
                };
                say(
                    WHO,
                    format!(
                        "Echo({text:?}, {times}) from {from}; the kernel attached: {}",
                        caller(&call)
                    ),
                );
                let echoed = vec![text.as_str(); times as usize].join(" ");
                say(WHO, format!("broadcasts Echoed({text:?}, {from:?})"));
                conn.emit_signal(None, PATH, IFACE, "Echoed", &(text.as_str(), from.as_str()))?;
                conn.reply(&call, &(echoed.as_str(), echoed.len() as u32))?;
            }
            (Some(IFACE) | None, Some("Quit")) => {
                say(WHO, format!("Quit() from {from}: exiting"));
                conn.reply(&call, &())?;
                return Ok(());
            }
            (_, member) => {
                let m = member.unwrap_or("");
                say(WHO, format!("{m}() from {from}: replies UnknownMethod"));
                conn.reply_error(
                    &call,
                    err::UNKNOWN_METHOD,
                    &format!("Unknown method '{m}' on interface '{IFACE}'"),
                )?;
            }
        }
    }
}

fn main() {
    if let Err(e) = run() {
        fail(
            WHO,
            format!("{} ({})", e.name(), e.message().unwrap_or_default()),
        );
    }
}
