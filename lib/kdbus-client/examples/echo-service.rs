//! The echo service: owns `org.example.Echo`, answers
//! `org.example.Echo.Echo(s) -> s` on `/org/example/Echo`, and broadcasts
//! the signal `org.example.Echo.Echoed(s)` after each call. `Quit()`
//! ends it.
//!
//! ```sh
//! echo-service [ENDPOINT|ADDRESS]   # default: the system bus
//! ```

use kdbus_client::error::names as err;
use kdbus_client::{Address, ConnectionBuilder, RequestNameFlags, RequestNameReply};

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

fn main() -> kdbus_client::Result<()> {
    let conn = ConnectionBuilder::address(address())
        .description("echo-service")
        .build()?;
    match conn.request_name(NAME, RequestNameFlags::DO_NOT_QUEUE)? {
        RequestNameReply::PrimaryOwner => {}
        other => {
            eprintln!("echo-service: could not own {NAME}: {other:?}");
            std::process::exit(1);
        }
    }
    println!("echo-service: {} owns {NAME}", conn.unique_name());
    loop {
        let Some(call) = conn.receive(None)? else {
            continue;
        };
        if call.message_type() != kdbus_client::wire::MessageType::MethodCall {
            continue;
        }
        let m = call.metadata();
        println!(
            "echo-service: {}.{} from {} (pid {:?}, euid {:?}, names {:?}, description {:?})",
            call.interface().unwrap_or("-"),
            call.member().unwrap_or("-"),
            call.sender().unwrap_or("?"),
            m.pid(),
            m.euid(),
            m.names,
            m.description,
        );
        if call.path() != Some(PATH) {
            conn.reply_error(
                &call,
                err::UNKNOWN_OBJECT,
                &format!("No object at {:?}", call.path()),
            )?;
            continue;
        }
        match (call.interface(), call.member()) {
            (Some(IFACE) | None, Some("Echo")) => match call.body::<String>() {
                Ok(s) => {
                    conn.reply(&call, &(s.as_str(),))?;
                    conn.emit_signal(None, PATH, IFACE, "Echoed", &(s.as_str(),))?;
                }
                Err(e) => conn.reply_error(&call, err::INVALID_ARGS, &e.to_string())?,
            },
            (Some(IFACE) | None, Some("Quit")) => {
                conn.reply(&call, &())?;
                println!("echo-service: quitting");
                return Ok(());
            }
            (_, member) => conn.reply_error(
                &call,
                err::UNKNOWN_METHOD,
                &format!("Unknown method '{}'.", member.unwrap_or("")),
            )?,
        }
    }
}
