//! The tests. Each runs in a process of its own (`--run-test NAME`) on a
//! fresh bus; helpers are processes too (`role.rs`, `roles.rs`).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kdbus_client::error::names as err;
use kdbus_client::{AsyncConnection, Connection, ConnectionBuilder, Message};
use zvariant::OwnedValue;

use crate::role::Role;
use crate::roles::{who_of, Args, Who, IFACE, NAME, PATH};

/// A failed (or skipped) test.
#[derive(Debug)]
pub struct Fail {
    skip: bool,
    msg: String,
}

impl Fail {
    pub fn msg(m: impl Into<String>) -> Self {
        Fail {
            skip: false,
            msg: m.into(),
        }
    }
}

impl From<kdbus_client::Error> for Fail {
    fn from(e: kdbus_client::Error) -> Self {
        Fail::msg(format!(
            "{} ({}; {e:?})",
            e.name(),
            e.message().unwrap_or_default()
        ))
    }
}

pub type TResult<T> = Result<T, Fail>;

macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(Fail::msg(format!($($fmt)+)));
        }
    };
}

macro_rules! ensure_eq {
    ($a:expr, $b:expr, $what:expr) => {
        match (&$a, &$b) {
            (a, b) => {
                if a != b {
                    return Err(Fail::msg(format!(
                        "{}: got {:?}, expected {:?}",
                        $what, a, b
                    )));
                }
            }
        }
    };
}

fn info(s: impl std::fmt::Display) {
    println!("info: {s}");
}

/// What a test gets: the endpoint of its own bus.
pub struct Ctx {
    pub bus: String,
}

impl Ctx {
    fn conn(&self) -> TResult<Connection> {
        Ok(ConnectionBuilder::path(&self.bus)
            .description("kct-test")
            .build()?)
    }

    fn builder(&self) -> ConnectionBuilder {
        ConnectionBuilder::path(&self.bus).description("kct-test")
    }

    /// Starts an echo service and waits until it owns its name; returns it
    /// and its unique name.
    fn service(&self, args: &[&str]) -> TResult<(Role, String)> {
        let r = Role::spawn("echo-service", &self.bus, args)?;
        let u = r.expect("ready")?;
        Ok((r, u))
    }

    fn role(&self, role: &str, args: &[&str]) -> TResult<Role> {
        Role::spawn(role, &self.bus, args)
    }
}

type TestFn = fn(&Ctx) -> TResult<()>;

pub const TESTS: &[(&str, TestFn)] = &[
    ("call-sync-typed-args", call_sync_typed_args),
    ("call-sync-by-unique-name", call_sync_by_unique_name),
    ("call-async-many", call_async_many),
    ("call-threads-shared-connection", call_threads_shared),
    ("call-tokio-concurrent", call_tokio_concurrent),
    ("error-service-unknown", error_service_unknown),
    ("error-unknown-method", error_unknown_method),
    ("error-custom-name", error_custom_name),
    ("error-name-has-no-owner", error_name_has_no_owner),
    ("error-timeout-sync", error_timeout_sync),
    ("error-noreply-async-timeout", error_noreply_async_timeout),
    ("error-noreply-peer-died", error_noreply_peer_died),
    ("error-access-denied", error_access_denied),
    ("signal-match-one-of-two", signal_match_member),
    ("signal-match-arg0", signal_match_arg0),
    ("signal-match-sender", signal_match_sender),
    ("noc-acquire-and-exit", noc_acquire_and_exit),
    ("noc-release-name", noc_release_name),
    ("noc-replacement", noc_replacement),
    ("noc-queue-hand-over", noc_queue),
    ("noc-unique-names", noc_unique_names),
    ("memfd-body-700k", memfd_700k),
    ("memfd-body-8mib", memfd_8mib),
    ("fd-pipe-write-end", fd_pipe_write_end),
    ("fd-pipe-read-end", fd_pipe_read_end),
    ("fd-refused-without-accept-fd", fd_refused),
    ("metadata-caller", metadata_caller),
    ("metadata-caller-thread", metadata_caller_thread),
    ("metadata-reply-sender", metadata_reply_sender),
    ("metadata-unprivileged-sender", metadata_unprivileged_sender),
];

/// Runs test `name` on the bus at `bus`; the process's exit status.
pub fn run(name: &str, bus: &str) -> i32 {
    let Some(t) = TESTS.iter().find(|t| t.0 == name) else {
        eprintln!("no test {name}");
        return 2;
    };
    let ctx = Ctx { bus: bus.into() };
    match (t.1)(&ctx) {
        Ok(()) => 0,
        Err(f) if f.skip => {
            println!("skip: {}", f.msg);
            crate::SKIP
        }
        Err(f) => {
            println!("FAIL: {}", f.msg);
            1
        }
    }
}

fn call(member: &str) -> Message {
    Message::method_call(PATH, member)
        .destination(NAME)
        .interface(IFACE)
        .build_empty()
        .expect("message")
}

fn echo(conn: &Connection, s: &str) -> TResult<String> {
    Ok(conn
        .call_method(NAME, PATH, Some(IFACE), "Echo", &(s,))?
        .body()?)
}

fn expect_err<T: std::fmt::Debug>(
    r: kdbus_client::Result<T>,
    name: &str,
    what: &str,
) -> TResult<kdbus_client::Error> {
    match r {
        Err(e) if e.is(name) => Ok(e),
        Err(e) => Err(Fail::msg(format!(
            "{what}: error {} ({}), expected {name}",
            e.name(),
            e.message().unwrap_or_default()
        ))),
        Ok(v) => Err(Fail::msg(format!(
            "{what}: succeeded ({v:?}), expected {name}"
        ))),
    }
}

fn show(e: &kdbus_client::Error) -> String {
    format!("{}: {}", e.name(), e.message().unwrap_or_default())
}

// ---- calls ----

fn sample_args() -> Args {
    let mut dict = HashMap::new();
    dict.insert("answer".to_string(), OwnedValue::from(42u32));
    dict.insert("pi".to_string(), OwnedValue::from(3.25f64));
    dict.insert(
        "name".to_string(),
        OwnedValue::try_from(zvariant::Value::from("kdbus")).expect("value"),
    );
    (
        "grüße, kdbus".to_string(),
        0xdead_beef,
        -1 << 40,
        true,
        -2.5,
        vec!["a".into(), "".into(), "ccc".into()],
        dict,
        ("nested".into(), -7),
        vec![0, 1, 2, 255],
    )
}

fn call_sync_typed_args(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let args = sample_args();
    let reply = conn.call_method(NAME, PATH, Some(IFACE), "EchoArgs", &args)?;
    ensure_eq!(reply.signature(), "suxbdasa{sv}(sn)ay", "reply signature");
    let back: Args = reply.body()?;
    ensure_eq!(back, args, "echoed arguments");
    // A wrong type is refused by the deserializer, not misread.
    ensure!(
        reply.body::<(String, u32)>().is_err(),
        "reply read as (su) although it is {}",
        reply.signature()
    );
    info(format!("EchoArgs({}) round trip equal", reply.signature()));
    Ok(())
}

fn call_sync_by_unique_name(ctx: &Ctx) -> TResult<()> {
    let (_svc, unique) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let r: String = conn
        .call_method(&unique, PATH, Some(IFACE), "Echo", &("by id",))?
        .body()?;
    ensure_eq!(r, "by id", "reply");
    ensure_eq!(conn.get_name_owner(NAME)?, unique, "GetNameOwner");
    Ok(())
}

fn call_async_many(ctx: &Ctx) -> TResult<()> {
    let (_svc, unique) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let mut pending = Vec::new();
    for i in 0..16 {
        let m = Message::method_call(PATH, "Echo")
            .destination(NAME)
            .interface(IFACE)
            .build(&(format!("async {i}"),))?;
        pending.push((i, conn.call_async(&m, Some(Duration::from_secs(20)))?));
    }
    // Waited for in reverse order: replies that arrive meanwhile wait in
    // the connection for their caller.
    for (i, p) in pending.iter().rev() {
        let r = conn.wait_reply(p)?;
        ensure_eq!(r.body::<String>()?, format!("async {i}"), "reply");
        ensure_eq!(r.sender(), Some(unique.as_str()), "reply sender");
        ensure_eq!(r.reply_serial(), Some(p.cookie()), "reply serial");
    }
    ensure!(
        conn.try_receive()?.is_none(),
        "a reply was left over for receive()"
    );
    Ok(())
}

fn call_threads_shared(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = Arc::new(ctx.conn()?);
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let conn = conn.clone();
            std::thread::spawn(move || -> TResult<()> {
                for i in 0..25 {
                    let s = format!("t{t} #{i}");
                    let r = if i % 2 == 0 {
                        echo(&conn, &s)?
                    } else {
                        let m = Message::method_call(PATH, "Echo")
                            .destination(NAME)
                            .interface(IFACE)
                            .build(&(s.as_str(),))?;
                        let p = conn.call_async(&m, None)?;
                        conn.wait_reply(&p)?.body()?
                    };
                    ensure_eq!(r, s, "reply");
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().map_err(|_| Fail::msg("thread panicked"))??;
    }
    info("4 threads x 25 calls (sync and async alternating) on one connection");
    Ok(())
}

fn call_tokio_concurrent(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Fail::msg(format!("runtime: {e}")))?;
    rt.block_on(async {
        let conn = AsyncConnection::new(ctx.conn()?)?;
        conn.add_match(&format!("type='signal',interface='{IFACE}',member='Tick'"))?;
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let conn = conn.clone();
                tokio::spawn(async move {
                    let s = format!("tokio {i}");
                    let r: String = conn
                        .call_method(NAME, PATH, Some(IFACE), "Echo", &(s.as_str(),))
                        .await?
                        .body()?;
                    Ok::<_, kdbus_client::Error>((s, r))
                })
            })
            .collect();
        for t in tasks {
            let (s, r) = t.await.map_err(|e| Fail::msg(format!("join: {e}")))??;
            ensure_eq!(r, s, "reply");
        }
        conn.call_method(NAME, PATH, Some(IFACE), "Emit", &("Tick", "tock"))
            .await?;
        let Some(sig) = conn.receive_timeout(Duration::from_secs(10)).await? else {
            return Err(Fail::msg("no Tick signal within 10 s"));
        };
        ensure!(sig.is_signal(IFACE, "Tick"), "got {:?}", sig.member());
        ensure_eq!(sig.body::<String>()?, "tock", "signal argument");
        let e = conn
            .call_method("org.example.Nobody", PATH, None, "Echo", &("x",))
            .await;
        expect_err(e, err::SERVICE_UNKNOWN, "async call to org.example.Nobody")?;
        Ok(())
    })
}

// ---- errors ----

fn error_service_unknown(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    let e = expect_err(
        conn.call_method("org.example.Nobody", PATH, None, "Echo", &("x",)),
        err::SERVICE_UNKNOWN,
        "sync call to org.example.Nobody",
    )?;
    info(show(&e));
    let m = Message::method_call(PATH, "Echo")
        .destination("org.example.Nobody")
        .build(&("x",))?;
    expect_err(
        conn.call_async(&m, None).map(|p| p.cookie()),
        err::SERVICE_UNKNOWN,
        "async call to org.example.Nobody",
    )?;
    let e = expect_err(
        conn.call_method(":1.9999", PATH, None, "Echo", &("x",)),
        err::SERVICE_UNKNOWN,
        "call to :1.9999",
    )?;
    info(show(&e));
    // A signal to nobody is dropped silently, as sd-bus does.
    conn.emit_signal(Some("org.example.Nobody"), PATH, IFACE, "Ping", &("x",))?;
    Ok(())
}

fn error_unknown_method(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let e = expect_err(conn.call(&call("Shout")), err::UNKNOWN_METHOD, "Shout()")?;
    ensure_eq!(
        e.message().as_deref(),
        Some("Unknown method 'Shout'"),
        "error message"
    );
    info(show(&e));
    Ok(())
}

fn error_custom_name(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let r = conn.call_method(
        NAME,
        PATH,
        Some(IFACE),
        "Fail",
        &("org.example.Error.Custom", "it went wrong"),
    );
    let e = expect_err(r, "org.example.Error.Custom", "Fail()")?;
    ensure_eq!(e.message().as_deref(), Some("it went wrong"), "message");
    ensure!(e.errno().is_none(), "an error reply has no errno");
    // The same through call_async + wait_reply.
    let m = Message::method_call(PATH, "Fail")
        .destination(NAME)
        .interface(IFACE)
        .build(&("org.example.Error.Other", "async"))?;
    let p = conn.call_async(&m, None)?;
    expect_err(
        conn.wait_reply(&p),
        "org.example.Error.Other",
        "async Fail()",
    )?;
    // Wrong argument types: the service's deserializer refuses them.
    let e = expect_err(
        conn.call_method(NAME, PATH, Some(IFACE), "Echo", &(1u32,)),
        err::INVALID_ARGS,
        "Echo(u)",
    )?;
    info(show(&e));
    Ok(())
}

fn error_name_has_no_owner(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    let e = expect_err(
        conn.get_name_owner(NAME),
        err::NAME_HAS_NO_OWNER,
        "GetNameOwner before the service",
    )?;
    info(show(&e));
    ensure!(
        !conn.name_has_owner(NAME)?,
        "NameHasOwner before the service"
    );
    let (_svc, unique) = ctx.service(&[])?;
    ensure!(conn.name_has_owner(NAME)?, "NameHasOwner with the service");
    ensure_eq!(conn.get_name_owner(NAME)?, unique, "GetNameOwner");
    ensure!(
        conn.list_names()?.iter().any(|n| n == NAME),
        "ListNames lacks {NAME}"
    );
    expect_err(
        conn.get_name_owner("org.example.Nobody"),
        err::NAME_HAS_NO_OWNER,
        "GetNameOwner(org.example.Nobody)",
    )?;
    Ok(())
}

fn error_timeout_sync(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let m = Message::method_call(PATH, "Sleep")
        .destination(NAME)
        .interface(IFACE)
        .build(&(3000u32,))?;
    let t0 = Instant::now();
    let e = expect_err(
        conn.call_timeout(&m, Duration::from_millis(300)),
        err::TIMEOUT,
        "Sleep(3000) with a 300 ms timeout",
    )?;
    let dt = t0.elapsed();
    ensure!(
        dt >= Duration::from_millis(290),
        "timed out early, after {dt:?}"
    );
    ensure_eq!(e.errno(), Some(kdbus::Errno::ETIMEDOUT), "errno");
    info(format!(
        "{} after {} ms (limit 300)",
        show(&e),
        dt.as_millis()
    ));
    let e = expect_err(
        conn.call_timeout(&call("Ignore"), Duration::from_millis(300)),
        err::TIMEOUT,
        "Ignore() with a 300 ms timeout",
    )?;
    drop(e);
    // The connection still works afterwards (the late reply of Sleep is
    // dropped by the kernel: its window is closed).
    ensure_eq!(echo(&conn, "after")?, "after", "echo after the timeouts");
    Ok(())
}

fn error_noreply_async_timeout(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let t0 = Instant::now();
    let p = conn.call_async(&call("Ignore"), Some(Duration::from_millis(1000)))?;
    // The kernel's REPLY_TIMEOUT notification makes the descriptor
    // readable; the library's own deadline (500 ms later) is not involved.
    let rev = kdbus::poll_once(&conn, kdbus::PollFlags::POLLIN, 10_000)
        .map_err(kdbus_client::Error::from_errno)?;
    let dt = t0.elapsed();
    ensure!(
        rev.contains(kdbus::PollFlags::POLLIN),
        "no REPLY_TIMEOUT notification within 10 s"
    );
    ensure!(
        dt >= Duration::from_millis(990),
        "notification early, after {dt:?}"
    );
    let e = expect_err(
        conn.wait_reply(&p),
        err::NO_REPLY,
        "Ignore() async, 1000 ms",
    )?;
    ensure_eq!(
        e.message().as_deref(),
        Some("Method call timed out"),
        "message"
    );
    info(format!(
        "kernel REPLY_TIMEOUT after {} ms (deadline 1000 ms) -> {}",
        dt.as_millis(),
        show(&e)
    ));
    ensure_eq!(echo(&conn, "after")?, "after", "echo afterwards");
    Ok(())
}

fn error_noreply_peer_died(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    let watch = conn.watch_name_owner(Some(NAME))?;
    let (mut svc, _) = ctx.service(&[])?;
    let e = expect_err(conn.call(&call("Die")), err::NO_REPLY, "sync Die()")?;
    info(format!("sync: {}", show(&e)));
    svc.wait_exit(Duration::from_secs(10))?;
    // The next service gets the name once the first one's is gone.
    wait_noc(&conn, NAME, None, Some(None))?;
    let (mut svc, _) = ctx.service(&[])?;
    let p = conn.call_async(&call("Die"), Some(Duration::from_secs(20)))?;
    let t0 = Instant::now();
    let e = expect_err(conn.wait_reply(&p), err::NO_REPLY, "async Die()")?;
    ensure!(
        t0.elapsed() < Duration::from_secs(15),
        "NoReply only after {:?}: the local deadline, not the kernel's REPLY_DEAD",
        t0.elapsed()
    );
    ensure_eq!(
        e.message().as_deref(),
        Some("Method call peer died"),
        "message"
    );
    info(format!("async: {}", show(&e)));
    svc.wait_exit(Duration::from_secs(10))?;
    conn.remove_match(&watch)?;
    Ok(())
}

fn error_access_denied(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let mut s = ctx.role("unpriv-sender", &["--uid", "1000", "--gid", "1000"])?;
    s.expect("ready")?;
    s.send("call")?;
    let r = s.expect("error")?;
    ensure_eq!(r, err::ACCESS_DENIED, "uid 1000 calling uid 0's service");
    info(format!("uid 1000 -> {NAME} (uid 0), no policy: {r}"));
    Ok(())
}

// ---- signals and matches ----

struct Listen {
    queued: bool,
    got: Vec<String>,
    unmatched: u64,
}

/// Two listeners with rules `a` and `b`; the service broadcasts
/// `Emit(member, arg0)`; `a` must get exactly that signal (queued by the
/// kernel), `b` nothing at all (nothing queued: the kernel's bloom
/// filter, not the library's re-check, kept it out).
fn one_of_two(ctx: &Ctx, a: &str, b: &str, member: &str, arg0: &str) -> TResult<()> {
    let (_svc, svc_unique) = ctx.service(&[])?;
    let mut la = ctx.role("listener", &["--rule", a])?;
    let mut lb = ctx.role("listener", &["--rule", b])?;
    la.expect("ready")?;
    lb.expect("ready")?;
    let conn = ctx.conn()?;
    conn.call_method(NAME, PATH, Some(IFACE), "Emit", &(member, arg0))?;
    // The broadcast SEND returned before the reply was sent, once the
    // signal was queued for every matching receiver.
    let ra = listen(&mut la, 2000)?;
    let rb = listen(&mut lb, 500)?;
    ensure!(ra.queued, "listener A ({a}): nothing queued by the kernel");
    ensure_eq!(ra.got, vec![format!("{member} {arg0}")], "listener A got");
    ensure_eq!(
        ra.unmatched,
        0,
        "listener A: broadcasts dropped by the re-check"
    );
    ensure!(
        !rb.queued,
        "listener B ({b}): the kernel queued something for it"
    );
    ensure!(rb.got.is_empty(), "listener B got {:?}", rb.got);
    ensure_eq!(
        rb.unmatched,
        0,
        "listener B: broadcasts dropped by the re-check"
    );
    info(format!(
        "{member}({arg0:?}) from {svc_unique}: A [{a}] got it; B [{b}]: nothing queued"
    ));
    Ok(())
}

fn listen(l: &mut Role, ms: u64) -> TResult<Listen> {
    l.send(&format!("check {ms}"))?;
    let queued = l.expect("queued")? == "yes";
    let mut got = Vec::new();
    let limit = Duration::from_millis(ms) + crate::role::LINE_TIMEOUT;
    loop {
        let line = l.next_line(limit)?;
        if let Some(g) = line.strip_prefix("got ") {
            got.push(g.to_string());
        } else if let Some(n) = line.strip_prefix("unmatched ") {
            let unmatched = n.parse().unwrap_or(u64::MAX);
            l.expect("done")?;
            return Ok(Listen {
                queued,
                got,
                unmatched,
            });
        }
    }
}

fn signal_match_member(ctx: &Ctx) -> TResult<()> {
    one_of_two(
        ctx,
        &format!("type='signal',interface='{IFACE}',member='Ping'"),
        &format!("type='signal',interface='{IFACE}',member='Pong'"),
        "Ping",
        "x",
    )
}

fn signal_match_arg0(ctx: &Ctx) -> TResult<()> {
    one_of_two(
        ctx,
        &format!("type='signal',interface='{IFACE}',member='Ping',arg0='hello'"),
        &format!("type='signal',interface='{IFACE}',member='Ping',arg0='bye'"),
        "Ping",
        "hello",
    )
}

fn signal_match_sender(ctx: &Ctx) -> TResult<()> {
    // B's rule names another connection as the sender: this test's own.
    let conn = ctx.conn()?;
    let me = conn.unique_name().to_string();
    one_of_two(
        ctx,
        &format!("type='signal',sender='{NAME}',member='Ping'"),
        &format!("type='signal',sender='{me}',member='Ping'"),
        "Ping",
        "x",
    )
}

// ---- NameOwnerChanged ----

/// Receives until NameOwnerChanged(name, old, new); `None` for "any" in
/// `old`, and for `new` `Some(None)` = no new owner.
fn wait_noc(
    conn: &Connection,
    name: &str,
    old: Option<&str>,
    new: Option<Option<&str>>,
) -> TResult<(Option<String>, Option<String>)> {
    let end = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(Instant::now());
        let Some(m) = conn.receive(Some(left))? else {
            return Err(Fail::msg(format!(
                "no NameOwnerChanged({name}, {old:?}, {new:?}) within 20 s; saw {seen:?}"
            )));
        };
        let Some(c) = m.name_owner_changed() else {
            continue;
        };
        let hit = c.name == name
            && old.is_none_or(|o| c.old_owner.as_deref() == Some(o).filter(|s| !s.is_empty()))
            && new.is_none_or(|n| c.new_owner.as_deref() == n);
        if hit {
            return Ok((c.old_owner, c.new_owner));
        }
        seen.push((c.name, c.old_owner, c.new_owner));
    }
}

fn noc_acquire_and_exit(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    conn.watch_name_owner(Some(NAME))?;
    let (mut svc, unique) = ctx.service(&[])?;
    let (old, _) = wait_noc(&conn, NAME, None, Some(Some(&unique)))?;
    ensure_eq!(old, None, "old owner on acquisition");
    conn.call(&call("Quit"))?;
    svc.wait_exit(Duration::from_secs(10))?;
    wait_noc(&conn, NAME, Some(&unique), Some(None))?;
    info(format!(
        "NameOwnerChanged({NAME}, '', {unique}) then ({NAME}, {unique}, '') after exit"
    ));
    Ok(())
}

fn noc_release_name(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    conn.watch_name_owner(Some(NAME))?;
    let (_svc, unique) = ctx.service(&[])?;
    wait_noc(&conn, NAME, None, Some(Some(&unique)))?;
    let r: String = conn.call(&call("Release"))?.body()?;
    ensure_eq!(r, "Released", "ReleaseName reply");
    wait_noc(&conn, NAME, Some(&unique), Some(None))?;
    ensure!(
        !conn.name_has_owner(NAME)?,
        "name still owned after release"
    );
    Ok(())
}

fn noc_replacement(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    conn.watch_name_owner(Some(NAME))?;
    // ALLOW_REPLACEMENT | DO_NOT_QUEUE, then REPLACE_EXISTING | DO_NOT_QUEUE.
    let (_s1, u1) = ctx.service(&["--flags", "5"])?;
    wait_noc(&conn, NAME, None, Some(Some(&u1)))?;
    let (_s2, u2) = ctx.service(&["--flags", "6"])?;
    wait_noc(&conn, NAME, Some(&u1), Some(Some(&u2)))?;
    ensure_eq!(
        conn.get_name_owner(NAME)?,
        u2,
        "owner after the replacement"
    );
    info(format!("NameOwnerChanged({NAME}, {u1}, {u2})"));
    Ok(())
}

fn noc_queue(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    conn.watch_name_owner(Some(NAME))?;
    let (mut s1, u1) = ctx.service(&["--flags", "0"])?;
    wait_noc(&conn, NAME, None, Some(Some(&u1)))?;
    let s2 = ctx.role("echo-service", &["--flags", "0"])?;
    let u2 = s2.expect("queued")?;
    ensure_eq!(
        conn.list_queued_owners(NAME)?,
        vec![u1.clone(), u2.clone()],
        "ListQueuedOwners"
    );
    conn.call(&call("Quit"))?;
    s1.wait_exit(Duration::from_secs(10))?;
    wait_noc(&conn, NAME, Some(&u1), Some(Some(&u2)))?;
    ensure_eq!(echo(&conn, "second")?, "second", "call to the new owner");
    drop(s2);
    Ok(())
}

fn noc_unique_names(ctx: &Ctx) -> TResult<()> {
    let conn = ctx.conn()?;
    conn.watch_name_owner(None)?;
    let mut l = ctx.role("listener", &[])?;
    let u = l.expect("ready")?;
    wait_noc(&conn, &u, None, Some(Some(&u)))?;
    l.close_stdin();
    l.wait_exit(Duration::from_secs(10))?;
    wait_noc(&conn, &u, Some(&u), Some(None))?;
    info(format!("NameOwnerChanged({u}, '', {u}) and ({u}, {u}, '')"));
    Ok(())
}

// ---- memfds ----

fn memfd_round_trip(ctx: &Ctx, len: usize) -> TResult<()> {
    // Both pools are 256 KiB: a body this large cannot be in them, so it
    // must travel in a sealed memfd (dbus-on-kdbus.md 4.3: > 512 KiB to a
    // destination).
    let pool = 256 * 1024;
    let (_svc, _) = ctx.service(&["--pool", &pool.to_string()])?;
    let conn = ctx.builder().pool_size(pool).build()?;
    let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
    let t0 = Instant::now();
    let reply = conn.call_method(NAME, PATH, Some(IFACE), "Bytes", &(data.clone(),))?;
    let (back,): (Vec<u8>,) = reply.body()?;
    let dt = t0.elapsed();
    ensure_eq!(back.len(), data.len(), "length");
    ensure!(back == data, "content differs");
    info(format!(
        "Bytes(ay of {len} bytes) -> the same bytes back, both pools {} KiB, {} ms",
        pool / 1024,
        dt.as_millis()
    ));
    Ok(())
}

fn memfd_700k(ctx: &Ctx) -> TResult<()> {
    memfd_round_trip(ctx, 700_001)
}

fn memfd_8mib(ctx: &Ctx) -> TResult<()> {
    memfd_round_trip(ctx, 8 * 1024 * 1024 + 3)
}

// ---- file descriptors ----

fn fd_pipe_write_end(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let (mut rd, wr) = std::io::pipe().map_err(|e| Fail::msg(format!("pipe: {e}")))?;
    let text = "written by the service through the passed pipe";
    {
        let wr = std::os::fd::OwnedFd::from(wr);
        let m = Message::method_call(PATH, "WriteFd")
            .destination(NAME)
            .interface(IFACE)
            .build(&(zvariant::Fd::from(&wr), text))?;
        conn.call(&m)?;
    } // our write end (and the message's copy) closed here
    let mut got = String::new();
    rd.read_to_string(&mut got)
        .map_err(|e| Fail::msg(format!("read: {e}")))?;
    ensure_eq!(got, text, "read through the pipe");
    info("WriteFd(h, s): the service wrote into our pipe; EOF after its copy closed");
    Ok(())
}

fn fd_pipe_read_end(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let (rd, mut wr) = std::io::pipe().map_err(|e| Fail::msg(format!("pipe: {e}")))?;
    let text = "written by the client, read by the service";
    wr.write_all(text.as_bytes())
        .map_err(|e| Fail::msg(format!("write: {e}")))?;
    drop(wr);
    let rd = std::os::fd::OwnedFd::from(rd);
    let m = Message::method_call(PATH, "ReadFd")
        .destination(NAME)
        .interface(IFACE)
        .build(&(zvariant::Fd::from(&rd),))?;
    let got: String = conn.call(&m)?.body()?;
    ensure_eq!(got, text, "what the service read");
    Ok(())
}

fn fd_refused(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&["--no-fds"])?;
    let conn = ctx.conn()?;
    let (_rd, wr) = std::io::pipe().map_err(|e| Fail::msg(format!("pipe: {e}")))?;
    let wr = std::os::fd::OwnedFd::from(wr);
    let m = Message::method_call(PATH, "WriteFd")
        .destination(NAME)
        .interface(IFACE)
        .build(&(zvariant::Fd::from(&wr), "x"))?;
    match conn.call(&m) {
        Ok(_) => Err(Fail::msg("a receiver without ACCEPT_FD got a descriptor")),
        Err(e) => {
            ensure_eq!(e.errno(), Some(kdbus::Errno::ECOMM), "errno");
            info(format!("to a connection without ACCEPT_FD: {}", show(&e)));
            Ok(())
        }
    }
}

// ---- metadata ----

fn proc_comm(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .trim()
        .to_string()
}

fn expect_who(who: &Who, pid: u32, tid: u32, tid_comm: &str) -> TResult<()> {
    let uid = nix::unistd::getuid().as_raw();
    let euid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let egid = nix::unistd::getegid().as_raw();
    let ppid = nix::unistd::getppid().as_raw() as u32;
    ensure_eq!(who.0, pid, "PIDS pid");
    ensure_eq!(who.1, tid, "PIDS tid");
    ensure_eq!(who.2, ppid, "PIDS ppid");
    ensure_eq!(
        (who.3, who.4, who.5, who.6),
        (uid, euid, euid, euid),
        "CREDS uids"
    );
    ensure_eq!(
        (who.7, who.8, who.9, who.10),
        (gid, egid, egid, egid),
        "CREDS gids"
    );
    ensure_eq!(who.11, proc_comm("/proc/self/comm"), "PID_COMM");
    ensure_eq!(who.12, tid_comm, "TID_COMM");
    ensure_eq!(who.13, "kct-test", "CONN_DESCRIPTION");
    Ok(())
}

fn metadata_caller(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let who: Who = conn.call(&call("WhoAmI"))?.body()?;
    let pid = std::process::id();
    expect_who(&who, pid, pid, &proc_comm("/proc/thread-self/comm"))?;
    info(format!(
        "the service saw pid {} tid {} ppid {} uid {} gid {} comm {:?} (ours: pid {pid})",
        who.0, who.1, who.2, who.3, who.7, who.11
    ));
    Ok(())
}

fn metadata_caller_thread(ctx: &Ctx) -> TResult<()> {
    let (_svc, _) = ctx.service(&[])?;
    let conn = Arc::new(ctx.conn()?);
    let c = conn.clone();
    let t = std::thread::Builder::new()
        .name("kct-caller".into())
        .spawn(move || -> TResult<(Who, u32, String)> {
            let tid = nix::unistd::gettid().as_raw() as u32;
            let who: Who = c.call(&call("WhoAmI"))?.body()?;
            Ok((who, tid, proc_comm("/proc/thread-self/comm")))
        })
        .map_err(|e| Fail::msg(format!("thread: {e}")))?;
    let (who, tid, comm) = t.join().map_err(|_| Fail::msg("thread panicked"))??;
    let pid = std::process::id();
    ensure!(tid != pid, "the thread's tid equals the pid");
    ensure_eq!(comm, "kct-caller", "the thread's own comm");
    expect_who(&who, pid, tid, "kct-caller")?;
    info(format!(
        "from a second thread: pid {} tid {} tid comm {:?}",
        who.0, who.1, who.12
    ));
    Ok(())
}

fn metadata_reply_sender(ctx: &Ctx) -> TResult<()> {
    let (svc, unique) = ctx.service(&[])?;
    let conn = ctx.conn()?;
    let reply = conn.call_method(NAME, PATH, Some(IFACE), "Echo", &("meta",))?;
    let md = reply.metadata();
    ensure_eq!(reply.sender(), Some(unique.as_str()), "sender");
    ensure_eq!(md.pid(), Some(svc.pid()), "the reply's PIDS pid");
    ensure_eq!(
        md.pids.and_then(|p| p.tid),
        Some(svc.pid()),
        "the reply's PIDS tid"
    );
    ensure_eq!(
        md.pids.and_then(|p| p.ppid),
        Some(std::process::id()),
        "the reply's PIDS ppid (the service is our child)"
    );
    ensure_eq!(md.euid(), Some(nix::unistd::geteuid().as_raw()), "euid");
    ensure_eq!(
        md.pid_comm.as_deref(),
        Some(proc_comm(&format!("/proc/{}/comm", svc.pid())).as_str()),
        "PID_COMM"
    );
    ensure_eq!(
        md.description.as_deref(),
        Some("echo-service"),
        "description"
    );
    ensure_eq!(md.owns(NAME), Some(true), "OWNED_NAME");
    ensure!(md.timestamp.is_some(), "no TIMESTAMP");
    info(format!(
        "reply from {unique}: pid {:?} (spawned as {}), comm {:?}, names {:?}",
        md.pid(),
        svc.pid(),
        md.pid_comm,
        md.names
    ));
    Ok(())
}

fn metadata_unprivileged_sender(ctx: &Ctx) -> TResult<()> {
    let conn = ctx
        .builder()
        .attach_recv(
            kdbus_client::metadata::attach::DEFAULT_RECV
                | kdbus_client::metadata::attach::AUXGROUPS,
        )
        .build()?;
    conn.add_match("type='signal',interface='org.example.Meta',member='Hello'")?;
    let mut s = ctx.role(
        "unpriv-sender",
        &["--uid", "4242", "--gid", "4343", "--groups", "4444,4545"],
    )?;
    let ready = s.expect("ready")?;
    let (unique, pid) = ready
        .split_once(' ')
        .ok_or_else(|| Fail::msg(format!("bad ready line {ready:?}")))?;
    let pid: u32 = pid.parse().map_err(|_| Fail::msg("bad pid"))?;
    ensure_eq!(pid, s.pid(), "the sender's own pid");
    s.send("signal")?;
    s.expect("sent")?;
    let Some(m) = conn.receive(Some(Duration::from_secs(10)))? else {
        return Err(Fail::msg("no Hello signal within 10 s"));
    };
    ensure!(
        m.is_signal("org.example.Meta", "Hello"),
        "got {:?}",
        m.member()
    );
    ensure_eq!(m.sender(), Some(unique), "sender");
    let w = who_of(&m);
    ensure_eq!((w.0, w.1), (pid, pid), "PIDS pid, tid");
    ensure_eq!(w.2, std::process::id(), "PIDS ppid");
    ensure_eq!((w.3, w.4, w.5, w.6), (4242, 4242, 4242, 4242), "CREDS uids");
    ensure_eq!(
        (w.7, w.8, w.9, w.10),
        (4343, 4343, 4343, 4343),
        "CREDS gids"
    );
    ensure_eq!(
        m.metadata().auxgroups.as_deref(),
        Some(&[4444u64, 4545][..]),
        "AUXGROUPS"
    );
    info(format!(
        "signal from {unique}: pid {} uid {} gid {} groups {:?} (the sender dropped to 4242/4343 + 4444,4545 before HELLO)",
        w.0, w.3, w.7, m.metadata().auxgroups.as_deref().unwrap_or(&[])
    ));
    Ok(())
}
