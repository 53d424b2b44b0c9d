//! `call` and `emit`.

use std::time::Duration;

use kdbus_client::message::{is_bus_name, is_interface_name, is_member_name, is_object_path};
use kdbus_client::{Connection, Message, MessageBuilder};
use zvariant::Value;

use crate::cli::{CallArgs, EmitArgs, JsonMode};
use crate::error::{usage, CtlError, Result};
use crate::format::{cmdline, json_body, json_text};
use crate::monitor::dump_message;
use crate::sigparse;

fn check(ok: bool, what: &str, v: &str) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(usage(format!("invalid {what} '{v}'")))
    }
}

fn build(b: MessageBuilder, signature: Option<&str>, args: &[String]) -> Result<Message> {
    let sig = signature.unwrap_or("");
    if signature.is_none() && !args.is_empty() {
        return Err(usage("arguments given without a signature"));
    }
    let vals = sigparse::parse_args(sig, args)?;
    let r = match sigparse::body(vals)? {
        Some(s) => b.build(&s),
        None => b.build_empty(),
    };
    r.map_err(|e| CtlError::client("cannot build the message", &e))
}

/// The arguments of a received message as values.
pub fn values(m: &Message) -> Result<Vec<Value<'static>>> {
    let args = m
        .args()
        .map_err(|e| CtlError::client("cannot decode the reply", &e))?;
    args.iter()
        .map(|a| {
            (**a)
                .try_clone()
                .map_err(|e| CtlError::Failure(e.to_string()))
        })
        .collect()
}

/// `kdbusctl call`.
pub fn call(conn: &Connection, a: &CallArgs, json: Option<JsonMode>) -> Result<()> {
    check(is_bus_name(&a.destination), "destination", &a.destination)?;
    check(is_object_path(&a.path), "object path", &a.path)?;
    check(is_interface_name(&a.interface), "interface", &a.interface)?;
    check(is_member_name(&a.member), "member", &a.member)?;
    if !(a.timeout > 0.0 && a.timeout.is_finite()) {
        return Err(usage(format!("invalid timeout {}", a.timeout)));
    }
    let mut b = Message::method_call(&a.path, &a.member)
        .destination(&a.destination)
        .interface(&a.interface);
    if !a.expect_reply {
        b = b.no_reply_expected();
    }
    if !a.auto_start {
        b = b.no_auto_start();
    }
    let msg = build(b, a.signature.as_deref(), &a.args)?;
    if !a.expect_reply {
        // A call expecting no reply: ServiceUnknown etc. still surface.
        conn.send(&msg)
            .map_err(|e| CtlError::client("call failed", &e))?;
        return Ok(());
    }
    let reply = conn
        .call_timeout(&msg, Duration::from_secs_f64(a.timeout))
        .map_err(|e| CtlError::client("call failed", &e))?;
    if a.quiet {
        return Ok(());
    }
    let vals = values(&reply)?;
    if let Some(mode) = json {
        println!("{}", json_text(&json_body(reply.signature(), &vals), mode));
    } else if a.verbose {
        print!("{}", dump_message(&reply, None));
    } else if !reply.signature().is_empty() {
        println!("{}", cmdline(reply.signature(), &vals));
    }
    Ok(())
}

/// `kdbusctl emit`.
pub fn emit(conn: &Connection, a: &EmitArgs) -> Result<()> {
    check(is_object_path(&a.path), "object path", &a.path)?;
    check(is_interface_name(&a.interface), "interface", &a.interface)?;
    check(is_member_name(&a.member), "member", &a.member)?;
    let mut b = Message::signal(&a.path, &a.interface, &a.member);
    if let Some(d) = &a.destination {
        check(is_bus_name(d), "destination", d)?;
        // A unicast signal to nobody is dropped silently by the kernel
        // path (as sd-bus does); tell the user instead.
        if !conn
            .name_has_owner(d)
            .map_err(|e| CtlError::client("cannot look up the destination", &e))?
        {
            return Err(CtlError::NoOwner(format!(
                "destination {d} has no owner (the signal was not sent)"
            )));
        }
        b = b.destination(d);
    }
    let msg = build(b, a.signature.as_deref(), &a.args)?;
    conn.send(&msg)
        .map_err(|e| CtlError::client("emit failed", &e))?;
    Ok(())
}
