//! `monitor` and `capture`: a kdbus monitor connection
//! (`KDBUS_HELLO_MONITOR`, connection.md 1) gets a copy of every message
//! and notification on the bus; match rules filter in userspace.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use kdbus::consts::*;
use kdbus::{CmdBuf, Errno, Notification, PollFlags};
use kdbus_client::message::is_bus_name;
use kdbus_client::metadata::attach;
use kdbus_client::{MatchRule, Message};
use serde_json::{json, Value as Json};

use crate::bus::{euid, open_error};
use crate::calls::values;
use crate::cli::{JsonMode, WatchArgs};
use crate::error::{errno_text, usage, CtlError, Result};
use crate::format::{dump_body, json_body, json_text};
use crate::info::status_fields;
use crate::pcap::{dbus1_message, PcapWriter};

/// The rules of `monitor [SERVICE|MATCH...] [--match RULE...]`: a word
/// with `=` is a match rule; a bus name `X` gives `sender='X'` and
/// `destination='X'`.
pub fn rules(filters: &[String], matches: &[String]) -> Result<Vec<MatchRule>> {
    let mut out = Vec::new();
    for f in filters {
        if f.contains('=') {
            out.push(parse_rule(f)?);
        } else if is_bus_name(f) {
            out.push(parse_rule(&format!("sender='{f}'"))?);
            out.push(parse_rule(&format!("destination='{f}'"))?);
        } else {
            return Err(usage(format!(
                "'{f}' is neither a bus name nor a match rule (key='value',...)"
            )));
        }
    }
    for m in matches {
        out.push(parse_rule(m)?);
    }
    Ok(out)
}

fn parse_rule(r: &str) -> Result<MatchRule> {
    MatchRule::parse(r).map_err(|e| {
        usage(format!(
            "invalid match rule \"{r}\": {}",
            e.message().unwrap_or_default()
        ))
    })
}

/// `rule.matches(m)` for a monitor, which gets every sender's names
/// (`KDBUS_ATTACH_NAMES`): a well-known `sender=` matches only a sender
/// that owns the name (no NAMES item: it owns none), never the kernel's
/// synthesized messages.
pub fn rule_matches(rule: &MatchRule, m: &Message) -> bool {
    if let Some(s) = &rule.sender {
        let special = kdbus_client::message::parse_unique_name(s).is_some()
            || s == kdbus_client::message::DBUS_NAME;
        if !special {
            if m.sender() == Some(kdbus_client::message::DBUS_NAME)
                || m.metadata().owns(s) != Some(true)
            {
                return false;
            }
            let mut r = rule.clone();
            r.sender = None;
            return r.matches(m);
        }
    }
    rule.matches(m)
}

fn notification_text(n: &Notification) -> String {
    match n {
        Notification::IdAdd(i) => format!("ID_ADD Id={} Flags={:#x}", i.id, i.flags),
        Notification::IdRemove(i) => format!("ID_REMOVE Id={} Flags={:#x}", i.id, i.flags),
        Notification::NameAdd(c) | Notification::NameRemove(c) | Notification::NameChange(c) => {
            let kind = match n {
                Notification::NameAdd(_) => "NAME_ADD",
                Notification::NameRemove(_) => "NAME_REMOVE",
                _ => "NAME_CHANGE",
            };
            format!(
                "{kind} Name={} OldId={} OldFlags={:#x} NewId={} NewFlags={:#x}",
                c.name, c.old_id.id, c.old_id.flags, c.new_id.id, c.new_id.flags
            )
        }
        Notification::ReplyTimeout => "REPLY_TIMEOUT".into(),
        Notification::ReplyDead => "REPLY_DEAD".into(),
    }
}

/// What the kernel said about a delivered message beyond the D-Bus
/// header: its kdbus fields and notification.
#[derive(Debug, Clone, Default)]
pub struct KernelInfo {
    /// `kdbus_msg.flags`.
    pub flags: u64,
    /// `src_id`.
    pub src_id: u64,
    /// `dst_id`.
    pub dst_id: u64,
    /// The kernel notification, if this is one.
    pub notification: Option<String>,
}

fn terse_creds(m: &Message) -> String {
    let fields = status_fields(m.metadata());
    let groups: [&[&str]; 9] = [
        &["PID", "TID", "PPID"],
        &[
            "UID", "EUID", "SUID", "FSUID", "GID", "EGID", "SGID", "FSGID",
        ],
        &["SupplementaryGIDs"],
        &["Comm", "TIDComm", "Exe"],
        &["CommandLine"],
        &["CGroup", "Description"],
        &[
            "EffectiveCapabilities",
            "PermittedCapabilities",
            "InheritableCapabilities",
            "BoundingCapabilities",
        ],
        &["Label"],
        &["AuditLoginUID", "AuditSessionID"],
    ];
    let mut out = String::new();
    for g in groups {
        let line: Vec<String> = fields
            .iter()
            .filter(|(k, _)| g.contains(k))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !line.is_empty() {
            out.push_str("  ");
            out.push_str(&line.join("  "));
            out.push('\n');
        }
    }
    if let Some(n) = &m.metadata().names {
        out.push_str(&format!("  WellKnownNames={}\n", n.join(" ")));
    }
    out
}

/// A message as `busctl monitor` shows it: the header lines, error,
/// timestamps, the sender's metadata, then the body tree and a blank line.
pub fn dump_message(m: &Message, k: Option<&KernelInfo>) -> String {
    let h = m.header();
    let mut out = format!(
        "\u{2023} Type={}  Endian=l  Flags={}  Version=2  Priority={}",
        h.msg_type.as_str(),
        h.flags,
        m.priority()
    );
    if h.cookie == kdbus_client::wire::SYNTHETIC_COOKIE {
        out.push_str(" Cookie=-1");
    } else {
        out.push_str(&format!(" Cookie={}", h.cookie));
    }
    if let Some(r) = h.reply_serial {
        out.push_str(&format!("  ReplyCookie={r}"));
    }
    out.push('\n');
    let mut l = String::new();
    for (k, v) in [
        ("Sender", m.sender()),
        ("Destination", m.destination()),
        ("Path", m.path()),
        ("Interface", m.interface()),
        ("Member", m.member()),
    ] {
        if let Some(v) = v {
            l.push_str(&format!("  {k}={v}"));
        }
    }
    if !l.is_empty() {
        out.push_str(&l);
        out.push('\n');
    }
    if let Some(e) = m.to_error() {
        out.push_str(&format!(
            "  ErrorName={}  ErrorMessage=\"{}\"\n",
            e.name(),
            e.message().unwrap_or_default()
        ));
    }
    if let Some(t) = m.metadata().timestamp {
        out.push_str(&format!(
            "  Monotonic={}  Realtime={}  SequenceNumber={}\n",
            t.monotonic_ns / 1000,
            t.realtime_ns / 1000,
            t.seqnum
        ));
    }
    if let Some(k) = k {
        let dst = if k.dst_id == kdbus::DST_ID_BROADCAST {
            "broadcast".to_string()
        } else {
            k.dst_id.to_string()
        };
        out.push_str(&format!(
            "  KdbusFlags={:#x}  SrcId={}  DstId={dst}\n",
            k.flags, k.src_id
        ));
        if let Some(n) = &k.notification {
            out.push_str(&format!("  Notification={n}\n"));
        }
    }
    out.push_str(&terse_creds(m));
    match m.args() {
        Ok(args) => {
            let vals: Vec<zvariant::Value<'_>> = args.iter().map(|a| (**a).clone()).collect();
            out.push_str(&dump_body(m.signature(), &vals));
        }
        Err(e) => out.push_str(&format!(
            "  MESSAGE \"{}\" {{ (undecodable: {e}) }};\n",
            m.signature()
        )),
    }
    out.push('\n');
    out
}

/// A message as busctl's `monitor --json` object.
pub fn json_message(m: &Message, k: Option<&KernelInfo>) -> Json {
    let h = m.header();
    let mut o = json!({
        "type": h.msg_type.as_str(),
        "endian": "l",
        "flags": h.flags,
        "version": 2,
        "priority": m.priority(),
        "cookie": h.cookie,
    });
    let map = o.as_object_mut().expect("object");
    let mut put = |k: &str, v: Json| {
        map.insert(k.into(), v);
    };
    if let Some(r) = h.reply_serial {
        put("reply_cookie", json!(r));
    }
    if let Some(t) = m.metadata().timestamp {
        put("timestamp-monotonic", json!(t.monotonic_ns / 1000));
        put("timestamp-realtime", json!(t.realtime_ns / 1000));
        put("seqnum", json!(t.seqnum));
    }
    for (key, v) in [
        ("sender", m.sender()),
        ("destination", m.destination()),
        ("path", m.path()),
        ("interface", m.interface()),
        ("member", m.member()),
    ] {
        if let Some(v) = v {
            put(key, json!(v));
        }
    }
    if let Some(e) = m.to_error() {
        put("error_name", json!(e.name()));
        put("error_message", json!(e.message()));
    }
    if let Some(k) = k {
        if let Some(n) = &k.notification {
            put("notification", json!(n));
        }
    }
    let mut md = serde_json::Map::new();
    for (k, v) in status_fields(m.metadata()) {
        md.insert(k.into(), json!(v));
    }
    if let Some(n) = &m.metadata().names {
        md.insert("WellKnownNames".into(), json!(n));
    }
    put("metadata", Json::Object(md));
    let payload = match values(m) {
        Ok(v) => json_body(m.signature(), &v),
        Err(e) => json!({"type": m.signature(), "error": e.to_string()}),
    };
    put("payload", payload);
    o
}

/// What to do with each message that passed the filters.
pub enum Sink<'a> {
    /// Text (or JSON) on stdout.
    Print(Option<JsonMode>),
    /// pcap packets.
    Pcap(&'a mut PcapWriter<Box<dyn Write>>),
}

/// Runs a monitor on `endpoint` until the bus goes away, `--duration`
/// passes or `--max-messages` were handled; returns how many were.
pub fn run(endpoint: &Path, rules: &[MatchRule], w: &WatchArgs, mut sink: Sink<'_>) -> Result<u64> {
    let fd = kdbus::open_endpoint(endpoint).map_err(|e| open_error(endpoint, e))?;
    let mut cmd = CmdBuf::hello(HELLO_MONITOR, kdbus::ATTACH_ANY, attach::ALL, 16 << 20);
    cmd.push_str(ITEM_CONN_DESCRIPTION, "kdbusctl-monitor");
    let raw = kdbus::Connection::from_hello(fd, &mut cmd).map_err(|e| {
        let base = format!(
            "cannot become a monitor of {}: {}",
            endpoint.display(),
            errno_text(e)
        );
        match e {
            Errno::EPERM => CtlError::Permission(format!(
                "{base}: monitors need the bus owner's uid or CAP_IPC_OWNER (this is uid {})",
                euid()
            )),
            Errno::EOPNOTSUPP => CtlError::Failure(format!(
                "{base}: custom endpoints cannot have monitors; use the bus's `bus` file"
            )),
            _ => CtlError::errno(&base, e),
        }
    })?;
    let h = *raw.hello_reply();
    if h.items_size > 0 {
        let _ = raw.free(h.offset);
    }
    eprintln!(
        "kdbusctl: monitoring {} as :1.{} (Ctrl-C to stop)",
        endpoint.display(),
        raw.id()
    );
    let deadline = w
        .duration
        .map(|d| Instant::now() + Duration::from_secs_f64(d.max(0.0)));
    let mut handled = 0u64;
    let mut stdout = std::io::stdout();
    loop {
        if w.max_messages.is_some_and(|n| handled >= n) {
            break;
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let r = match raw.recv(0, 0) {
            Ok(r) => r,
            Err(Errno::EAGAIN) => {
                let ms = deadline
                    .map(|d| d.saturating_duration_since(Instant::now()).as_millis())
                    .unwrap_or(1000)
                    .clamp(1, 1000) as u16;
                let ev = kdbus::poll_once(&raw, PollFlags::POLLIN, ms)
                    .or_else(|e| {
                        if e == Errno::EINTR {
                            Ok(PollFlags::empty())
                        } else {
                            Err(e)
                        }
                    })
                    .map_err(|e| CtlError::errno("poll failed", e))?;
                if ev.intersects(PollFlags::POLLHUP | PollFlags::POLLERR)
                    && !ev.contains(PollFlags::POLLIN)
                {
                    eprintln!("kdbusctl: the bus went away, exiting");
                    break;
                }
                continue;
            }
            Err(Errno::ECONNRESET | Errno::ESHUTDOWN) => {
                eprintln!("kdbusctl: the bus went away, exiting");
                break;
            }
            Err(e) => return Err(CtlError::errno("RECV failed", e)),
        };
        if r.reply.return_flags & RECV_RETURN_DROPPED_MSGS != 0 {
            eprintln!(
                "kdbusctl: the kernel dropped {} messages for this monitor",
                r.reply.dropped_msgs
            );
        }
        let parsed = r.message().map_err(|e| e.0).and_then(|km| {
            let k = KernelInfo {
                flags: km.flags,
                src_id: km.src_id,
                dst_id: km.dst_id,
                notification: km
                    .notification()
                    .ok()
                    .flatten()
                    .map(|n| notification_text(&n)),
            };
            kdbus_client::kmsg::incoming(&km, raw.id())
                .map(|m| (m, k))
                .map_err(|e| e.to_string())
        });
        let _ = r.free();
        let (msg, k) = match parsed {
            Ok((Some(m), k)) => (m, k),
            Ok((None, k)) => {
                // A notification without a D-Bus equivalent (e.g. a
                // name moving between queued owners).
                if rules.is_empty() {
                    if let (Sink::Print(None), Some(n)) = (&sink, &k.notification) {
                        let _ = writeln!(stdout, "\u{2023} Type=kernel  Notification={n}\n");
                        let _ = stdout.flush();
                    }
                }
                continue;
            }
            Err(e) => {
                eprintln!("kdbusctl: skipping an invalid message: {e}");
                continue;
            }
        };
        if !rules.is_empty() && !rules.iter().any(|r| rule_matches(r, &msg)) {
            continue;
        }
        handled += 1;
        match &mut sink {
            Sink::Print(None) => {
                let _ = write!(stdout, "{}", dump_message(&msg, Some(&k)));
                let _ = stdout.flush();
            }
            Sink::Print(Some(mode)) => {
                let _ = writeln!(
                    stdout,
                    "{}",
                    json_text(&json_message(&msg, Some(&k)), *mode)
                );
                let _ = stdout.flush();
            }
            Sink::Pcap(p) => match dbus1_message(&msg) {
                Ok(data) => {
                    let ts = msg
                        .metadata()
                        .timestamp
                        .map(|t| t.realtime_ns)
                        .unwrap_or_else(kdbus::realtime_ns);
                    p.packet(&data, ts)
                        .map_err(|e| CtlError::Failure(format!("cannot write the capture: {e}")))?;
                }
                Err(e) => {
                    handled -= 1;
                    eprintln!(
                        "kdbusctl: message cookie {} not captured: {}",
                        msg.cookie(),
                        e.0
                    );
                }
            },
        }
    }
    Ok(handled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdbus_client::MessageType;

    #[test]
    fn filter_words() {
        let r = rules(&["org.example.Echo".into()], &["type='signal'".into()]).unwrap();
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].sender.as_deref(), Some("org.example.Echo"));
        assert_eq!(r[1].destination.as_deref(), Some("org.example.Echo"));
        assert_eq!(r[2].msg_type, Some(MessageType::Signal));
        let e = rules(&["member='x".into()], &[]).unwrap_err();
        assert_eq!(e.exit_code(), crate::error::EXIT_USAGE);
        assert!(
            e.message()
                .starts_with("invalid match rule \"member='x\": "),
            "{}",
            e.message()
        );
        assert!(rules(&["not a name".into()], &[]).is_err());
        assert!(rules(&[], &["bogus='1'".into()]).is_err());
    }

    #[test]
    fn dump_layout() {
        let mut m = Message::method_call("/org/example/Echo", "Echo")
            .destination("org.example.Echo")
            .interface("org.example.Echo")
            .cookie(7)
            .build(&("hello",))
            .unwrap();
        let _ = &mut m;
        let d = dump_message(&m, None);
        assert_eq!(
            d,
            "\u{2023} Type=method_call  Endian=l  Flags=0  Version=2  Priority=0 Cookie=7\n  Destination=org.example.Echo  Path=/org/example/Echo  Interface=org.example.Echo  Member=Echo\n  MESSAGE \"s\" {\n          STRING \"hello\";\n  };\n\n"
        );
        let j = json_message(&m, None);
        assert_eq!(j["type"], "method_call");
        assert_eq!(j["member"], "Echo");
        assert_eq!(j["payload"], json!({"type": "s", "data": ["hello"]}));
    }
}
