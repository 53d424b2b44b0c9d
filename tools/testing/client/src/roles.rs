//! The helper processes (`--role ROLE --bus ENDPOINT ...`). Each prints
//! `ready ...` once it is set up and then does what its stdin or the bus
//! asks.

use std::collections::HashMap;
use std::io::{BufRead, Read, Write};
use std::time::{Duration, Instant};

use kdbus_client::error::names as err;
use kdbus_client::wire::MessageType;
use kdbus_client::{Connection, ConnectionBuilder, Message, RequestNameFlags, RequestNameReply};
use zvariant::OwnedValue;

pub const NAME: &str = "org.example.Echo";
pub const PATH: &str = "/org/example/Echo";
pub const IFACE: &str = "org.example.Echo";

/// The argument tuple of `EchoArgs` (`(suxbdasa{sv}(sn)ay)`), echoed back.
pub type Args = (
    String,
    u32,
    i64,
    bool,
    f64,
    Vec<String>,
    HashMap<String, OwnedValue>,
    (String, i16),
    Vec<u8>,
);

/// What `WhoAmI` returns: the caller's metadata as the service received
/// it (`u32::MAX` / "" for what was not attached): pid, tid, ppid, uid,
/// euid, suid, fsuid, gid, egid, sgid, fsgid, pid comm, tid comm,
/// description.
pub type Who = (
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    u32,
    String,
    String,
    String,
);

pub fn who_of(m: &Message) -> Who {
    let md = m.metadata();
    let u = |v: Option<u32>| v.unwrap_or(u32::MAX);
    let p = md.pids.unwrap_or_default();
    let c = md.creds.unwrap_or_default();
    (
        u(p.pid),
        u(p.tid),
        u(p.ppid),
        u(c.uid),
        u(c.euid),
        u(c.suid),
        u(c.fsuid),
        u(c.gid),
        u(c.egid),
        u(c.sgid),
        u(c.fsgid),
        md.pid_comm.clone().unwrap_or_default(),
        md.tid_comm.clone().unwrap_or_default(),
        md.description.clone().unwrap_or_default(),
    )
}

fn opt<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    let flag = format!("--{name}");
    args.iter()
        .position(|a| *a == flag)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn out(line: impl std::fmt::Display) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
    let _ = o.flush();
}

pub fn run(role: &str, bus: &str, args: &[String]) -> i32 {
    let r = match role {
        "echo-service" => echo_service(bus, args),
        "listener" => listener(bus, args),
        "unpriv-sender" => unpriv_sender(bus, args),
        _ => {
            eprintln!("unknown role {role}");
            return 2;
        }
    };
    match r {
        Ok(code) => code,
        Err(e) => {
            eprintln!(
                "role {role}: {} ({})",
                e.name(),
                e.message().unwrap_or_default()
            );
            1
        }
    }
}

/// `echo-service [--name NAME] [--pool BYTES] [--flags N] [--no-fds]`:
/// owns NAME (default org.example.Echo) with RequestName flags N (default
/// DO_NOT_QUEUE) and serves `/org/example/Echo`:
///
/// * `Echo(s) -> s`, `EchoArgs(Args) -> Args`, `Bytes(ay) -> ay`;
/// * `Sleep(u ms)` replies after `ms`; `Ignore()` never replies; `Die()`
///   exits without replying; `Fail(s name, s text)` replies that error;
/// * `WriteFd(h, s)` writes the string into the descriptor; `ReadFd(h) ->
///   s` reads it to EOF;
/// * `WhoAmI() -> Who`: the caller's metadata as received;
/// * `Emit(s member, s arg0)`: broadcasts `org.example.Echo.<member>(arg0)`;
/// * `Release()` releases the name; `Quit()` replies and exits;
/// * anything else: `UnknownMethod`.
fn echo_service(bus: &str, args: &[String]) -> kdbus_client::Result<i32> {
    let name = opt(args, "name").unwrap_or(NAME);
    let mut b = ConnectionBuilder::path(bus).description("echo-service");
    if let Some(p) = opt(args, "pool").and_then(|p| p.parse().ok()) {
        b = b.pool_size(p);
    }
    if args.iter().any(|a| a == "--no-fds") {
        b = b.accept_fds(false);
    }
    let conn = b.build()?;
    let flags = opt(args, "flags")
        .and_then(|f| f.parse().ok())
        .map(RequestNameFlags)
        .unwrap_or(RequestNameFlags::DO_NOT_QUEUE);
    match conn.request_name(name, flags)? {
        RequestNameReply::PrimaryOwner => out(format!("ready {}", conn.unique_name())),
        RequestNameReply::InQueue => out(format!("queued {}", conn.unique_name())),
        other => {
            out(format!("not-owner {other:?}"));
            return Ok(1);
        }
    }
    loop {
        let Some(mut call) = conn.receive(None)? else {
            continue;
        };
        if call.message_type() != MessageType::MethodCall {
            continue;
        }
        if call.path() != Some(PATH) {
            conn.reply_error(&call, err::UNKNOWN_OBJECT, "no such object")?;
            continue;
        }
        let member = call.member().unwrap_or("").to_string();
        let r: kdbus_client::Result<()> = (|| match member.as_str() {
            "Echo" => conn.reply(&call, &(call.body::<String>()?,)),
            "EchoArgs" => conn.reply(&call, &call.body::<Args>()?),
            "Bytes" => {
                let (b,): (Vec<u8>,) = call.body()?;
                conn.reply(&call, &(b,))
            }
            "Sleep" => {
                let ms: u32 = call.body()?;
                std::thread::sleep(Duration::from_millis(ms.into()));
                conn.reply(&call, &())
            }
            "Ignore" => Ok(()),
            "Die" => std::process::exit(3),
            "Fail" => {
                let (n, t): (String, String) = call.body()?;
                conn.reply_error(&call, &n, &t)
            }
            "WriteFd" => {
                let (fd, s): (zvariant::OwnedFd, String) = call.body()?;
                let mut f = std::fs::File::from(std::os::fd::OwnedFd::from(fd));
                let w = f.write_all(s.as_bytes());
                drop(f);
                drop(call.take_fds());
                match w {
                    Ok(()) => conn.reply(&call, &()),
                    Err(e) => conn.reply_error(&call, err::FAILED, &e.to_string()),
                }
            }
            "ReadFd" => {
                let fd: zvariant::OwnedFd = call.body()?;
                drop(call.take_fds());
                let mut f = std::fs::File::from(std::os::fd::OwnedFd::from(fd));
                let mut s = String::new();
                match f.read_to_string(&mut s) {
                    Ok(_) => conn.reply(&call, &(s,)),
                    Err(e) => conn.reply_error(&call, err::FAILED, &e.to_string()),
                }
            }
            "WhoAmI" => conn.reply(&call, &who_of(&call)),
            "Emit" => {
                let (m, a): (String, String) = call.body()?;
                conn.emit_signal(None, PATH, IFACE, &m, &(a.as_str(),))?;
                conn.reply(&call, &())
            }
            "Release" => {
                let r = conn.release_name(name)?;
                conn.reply(&call, &(format!("{r:?}"),))
            }
            "Quit" => {
                conn.reply(&call, &())?;
                std::process::exit(0)
            }
            m => conn.reply_error(&call, err::UNKNOWN_METHOD, &format!("Unknown method '{m}'")),
        })();
        if let Err(e) = r {
            conn.reply_error(
                &call,
                err::INVALID_ARGS,
                &e.message().unwrap_or_else(|| e.name()),
            )?;
        }
    }
}

/// `listener --rule RULE`: adds the match rule, prints `ready :1.N`; for
/// each stdin line `check MS` prints `queued yes|no` (whether the kernel
/// had queued anything for it: poll on the descriptor, before the library
/// reads anything), then `got MEMBER ARG0` for every signal received
/// within MS ms, `unmatched N` (broadcasts the rule's userspace re-check
/// dropped) and `done`. Exits at the end of stdin.
fn listener(bus: &str, args: &[String]) -> kdbus_client::Result<i32> {
    let conn = ConnectionBuilder::path(bus)
        .description("listener")
        .build()?;
    let rule = opt(args, "rule").unwrap_or("type='signal'");
    conn.add_match(rule)?;
    out(format!("ready {}", conn.unique_name()));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let Some(ms) = line
            .strip_prefix("check ")
            .and_then(|m| m.parse::<u64>().ok())
        else {
            continue;
        };
        let rev = kdbus::poll_once(&conn, kdbus::PollFlags::POLLIN, 0)
            .map_err(kdbus_client::Error::from_errno)?;
        let queued = rev.contains(kdbus::PollFlags::POLLIN);
        out(format!("queued {}", if queued { "yes" } else { "no" }));
        let end = Instant::now() + Duration::from_millis(ms);
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let Some(m) = conn.receive(Some(left))? else {
                break;
            };
            let arg0 = m
                .body::<String>()
                .or_else(|_| m.body::<(String, String)>().map(|t| t.0))
                .unwrap_or_default();
            out(format!("got {} {arg0}", m.member().unwrap_or("?")));
        }
        out(format!("unmatched {}", conn.unmatched_broadcasts()));
        out("done");
    }
    Ok(0)
}

/// `unpriv-sender --uid U --gid G [--groups G1,G2]`: drops to uid U / gid
/// G with those supplementary groups (default none), connects and prints `ready :1.N PID`; then, per
/// stdin line: `signal` broadcasts `org.example.Meta.Hello("unpriv")` and
/// prints `sent`; `call` calls `org.example.Echo.Echo` and prints `reply
/// ...` or `error NAME`. Exits at the end of stdin.
fn unpriv_sender(bus: &str, args: &[String]) -> kdbus_client::Result<i32> {
    let uid: u32 = opt(args, "uid")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let gid: u32 = opt(args, "gid")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    let groups: Vec<Gid> = opt(args, "groups")
        .unwrap_or("")
        .split(',')
        .filter_map(|g| g.parse().ok())
        .map(Gid::from_raw)
        .collect();
    let g = Gid::from_raw(gid);
    let u = Uid::from_raw(uid);
    setgroups(&groups)
        .and_then(|_| setresgid(g, g, g))
        .and_then(|_| setresuid(u, u, u))
        .map_err(kdbus_client::Error::from_errno)?;
    let conn: Connection = ConnectionBuilder::path(bus)
        .description("unpriv-sender")
        .build()?;
    out(format!(
        "ready {} {}",
        conn.unique_name(),
        std::process::id()
    ));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.as_str() {
            "signal" => {
                conn.emit_signal(
                    None,
                    "/org/example/Meta",
                    "org.example.Meta",
                    "Hello",
                    &("unpriv",),
                )?;
                out("sent");
            }
            "call" => match conn.call_method(NAME, PATH, Some(IFACE), "Echo", &("unpriv",)) {
                Ok(m) => out(format!("reply {}", m.body::<String>().unwrap_or_default())),
                Err(e) => out(format!("error {}", e.name())),
            },
            _ => {}
        }
    }
    Ok(0)
}
