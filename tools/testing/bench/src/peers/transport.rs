//! The transports compared, each a client here and an echo server in
//! another process, behind one small trait.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kdbus::{Bus, BusMaker, CmdBuf, Connection, Control};
use kdbus_bench::data::{check, poll_in, write_all};
use kdbus_bench::kbench::{self, Call, Outgoing, Serve, POOL_SIZE, RECV_SIZE};
use kdbus_bench::timing::Failure;
use kdbus_uapi as uapi;

use crate::daemons;
use crate::proc::Proc;
use crate::sdbus;

/// The well-known name every echo server owns.
pub const NAME: &str = "org.kdbus.bench.Echo";
/// Its object path, interface and method: `Echo(ay) -> ay`.
pub const PATH: &str = "/org/kdbus/bench";
pub const IFACE: &str = "org.kdbus.bench.Echo";
pub const MEMBER: &str = "Echo";

/// How long a server or broker may take to say it is ready (a TCG guest
/// on a busy host is slow to start dynamically linked programs).
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// One side of a method call: sends `payload` to the echo server and
/// returns once the same bytes came back and were spot-checked.
pub trait Peer {
    fn call(&mut self, payload: &[u8]) -> Result<(), Failure>;
}

/// The transports, in the order of the table's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// AF_UNIX `SOCK_SEQPACKET` pair, the bytes as they are: the baseline.
    Socket,
    /// kdbus through the low-level `lib/kdbus`: one PAYLOAD_VEC holding the
    /// bytes, no D-Bus header or marshalling.
    KdbusRaw,
    /// kdbus through the project's D-Bus client library (`lib/kdbus-client`)
    /// on both ends: GVariant messages marshalled by zvariant.
    KdbusDbus,
    /// dbus-daemon, sd-bus on both ends.
    DbusDaemon,
    /// dbus-broker (through dbus-broker-launch), sd-bus on both ends.
    DbusBroker,
}

pub const ALL: [Kind; 5] = [
    Kind::Socket,
    Kind::KdbusRaw,
    Kind::KdbusDbus,
    Kind::DbusDaemon,
    Kind::DbusBroker,
];

impl Kind {
    /// The name on the command line (`--only`).
    pub fn key(self) -> &'static str {
        match self {
            Kind::Socket => "socket",
            Kind::KdbusRaw => "kdbus",
            Kind::KdbusDbus => "kdbus-dbus",
            Kind::DbusDaemon => "dbus-daemon",
            Kind::DbusBroker => "dbus-broker",
        }
    }

    /// The prefix of its BENCH fields.
    pub fn field(self) -> &'static str {
        match self {
            Kind::Socket => "socket",
            Kind::KdbusRaw => "kdbus_raw",
            Kind::KdbusDbus => "kdbus_dbus",
            Kind::DbusDaemon => "dbus_daemon",
            Kind::DbusBroker => "dbus_broker",
        }
    }

    /// Its table column.
    pub fn column(self) -> &'static str {
        match self {
            Kind::Socket => "socketpair/s",
            Kind::KdbusRaw => "kdbus raw/s",
            Kind::KdbusDbus => "kdbus D-Bus/s",
            Kind::DbusDaemon => "dbus-daemon/s",
            Kind::DbusBroker => "dbus-broker/s",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        ALL.into_iter().find(|k| k.key() == s)
    }
}

/// What every transport's setup needs.
pub struct Env {
    /// Sockets, configs and logs (under /tmp, removed at the end).
    pub dir: PathBuf,
    /// This program, re-run as the servers.
    pub exe: PathBuf,
    /// The kdbusfs mount point.
    pub mount: String,
    pub dbus_daemon: PathBuf,
    pub broker_launch: PathBuf,
    /// The inotify stand-in for dbus-broker-launch (see `daemons`).
    pub inotify_shim: Option<PathBuf>,
}

impl Env {
    fn server(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.exe);
        c.arg("serve").args(args);
        c
    }
}

/// A transport set up: the client, its server process and whatever else
/// lives as long as they do (a broker, the bus).
pub struct Running {
    pub peer: Box<dyn Peer>,
    /// The server first, then a broker.
    pub procs: Vec<Proc>,
    /// The kdbus bus (closed last).
    pub bus: Option<Bus>,
    /// One line about the setup, for the report.
    pub about: String,
}

impl Running {
    /// Closes the client, ends the processes (server, then broker), closes
    /// the bus. Returns a note for each process that did not exit cleanly.
    pub fn stop(self) -> Vec<String> {
        let Running {
            peer,
            mut procs,
            bus,
            ..
        } = self;
        drop(peer);
        let mut notes = Vec::new();
        for p in &mut procs {
            let (how, clean) = p.stop();
            if !clean {
                notes.push(format!(
                    "{} ended with {how} ({})",
                    p.name,
                    p.log().display()
                ));
            }
        }
        drop(bus);
        notes
    }
}

/// Sets up `kind`: `Ok(Err(reason))` when it cannot run in this tree (a
/// skipped measurement, not a failure).
pub fn start(kind: Kind, env: &Env) -> Result<Result<Running, String>, Failure> {
    match kind {
        Kind::Socket => start_socket(env).map(Ok),
        Kind::KdbusRaw => start_kdbus_raw(env).map(Ok),
        Kind::KdbusDbus => start_kdbus_dbus(env).map(Ok),
        Kind::DbusDaemon => {
            let (broker, address) = daemons::dbus_daemon(env)?;
            start_sdbus(env, "dbus-daemon", broker, &address).map(Ok)
        }
        Kind::DbusBroker => {
            let (broker, address) = daemons::dbus_broker(env)?;
            start_sdbus(env, "dbus-broker", broker, &address).map(Ok)
        }
    }
}

// --- socketpair ---------------------------------------------------------------

fn socketpair() -> Result<(OwnedFd, OwnedFd), Failure> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    let r = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    if r != 0 {
        return Err(Failure::last("socketpair", "socket baseline"));
    }
    // SAFETY: two fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The socket's descriptor number in the server.
const SERVER_FD: RawFd = 3;

struct SocketPeer {
    fd: OwnedFd,
    buf: Vec<u8>,
}

impl Peer for SocketPeer {
    fn call(&mut self, payload: &[u8]) -> Result<(), Failure> {
        let fd = self.fd.as_raw_fd();
        write_all(fd, payload).map_err(|e| e.also("socket client"))?;
        if self.buf.len() <= payload.len() {
            self.buf.resize(payload.len() + 1, 1);
        }
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(fd, self.buf.as_mut_ptr().cast(), self.buf.len()) };
        if n < 0 {
            return Err(Failure::last("read", "socket client"));
        }
        check("socket client", &self.buf[..n as usize], payload.len())
    }
}

fn start_socket(env: &Env) -> Result<Running, Failure> {
    let (client, server) = socketpair()?;
    let mut p = Proc::spawn(
        "socket server",
        env.server(&["socket", &SERVER_FD.to_string()]),
        &env.dir.join("socket-server.log"),
        vec![(server, SERVER_FD)],
        false,
    )?;
    p.ready(READY_TIMEOUT)?;
    Ok(Running {
        peer: Box::new(SocketPeer {
            fd: client,
            buf: Vec::new(),
        }),
        procs: vec![p],
        bus: None,
        about: "socketpair: AF_UNIX SOCK_SEQPACKET, the server polls, reads, writes back".into(),
    })
}

/// The largest message the socket server echoes.
pub const SOCKET_MAX: usize = 1 << 20;

/// The socket server: poll, read a message, write it back, until the
/// client closes its end.
pub fn serve_socket(fd: RawFd) -> Result<(), Failure> {
    let who = "socket server";
    println!("ready fd {fd}");
    let mut buf = vec![0u8; SOCKET_MAX + 1];
    loop {
        match poll_in(fd, -1, who) {
            Ok(_) => {}
            Err(e) if e.op == "poll" && e.errno.is_none() => return Ok(()),
            Err(e) => return Err(e),
        }
        // SAFETY: buf is valid for writes of its length.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(Failure::last("read", who));
        }
        if n == 0 {
            return Ok(());
        }
        if n as usize == buf.len() {
            return Err(Failure::bad(
                "read",
                who,
                format!("message over {SOCKET_MAX} bytes"),
            ));
        }
        write_all(fd, &buf[..n as usize]).map_err(|e| e.also(who))?;
    }
}

// --- kdbus through lib/kdbus (no D-Bus marshalling) ---------------------------

struct KdbusRawPeer {
    conn: Connection,
    out: Outgoing,
    rcmd: CmdBuf,
    cookie: u64,
}

impl Peer for KdbusRawPeer {
    fn call(&mut self, payload: &[u8]) -> Result<(), Failure> {
        self.cookie += 1;
        self.out.set_vec(payload.len(), payload.as_ptr() as u64);
        kbench::call(
            &self.conn,
            0,
            &mut self.out,
            Call::Sync,
            self.cookie,
            &mut self.rcmd,
            |p| check("kdbus client", p, payload.len()),
        )
    }
}

fn start_kdbus_raw(env: &Env) -> Result<Running, Failure> {
    let bus = make_bus(env, "peers")?;
    let endpoint = bus.endpoint();
    let ep = endpoint.to_string_lossy().into_owned();
    let mut p = Proc::spawn(
        "kdbus server",
        env.server(&["kdbus", &ep]),
        &env.dir.join("kdbus-server.log"),
        Vec::new(),
        false,
    )?;
    p.ready(READY_TIMEOUT)?;
    let conn = hello(&endpoint, "kdbus client")?;
    Ok(Running {
        peer: Box::new(KdbusRawPeer {
            conn,
            out: Outgoing::with_vec_to_name(0, 0, NAME),
            rcmd: CmdBuf::new(RECV_SIZE),
            cookie: 0,
        }),
        procs: vec![p],
        bus: Some(bus),
        about: format!(
            "kdbus raw: lib/kdbus, no D-Bus marshalling: a sync call (EXPECT_REPLY + SYNC_REPLY) \
             to {NAME} (DST_NAME) with the bytes as one PAYLOAD_VEC; the server (another process) \
             polls, RECVs, replies with the bytes from its pool, FREEs"
        ),
    })
}

/// A bus of its own for one transport, `<uid>-<stem>-<pid>`.
fn make_bus(env: &Env, stem: &str) -> Result<Bus, Failure> {
    let who = "kdbus setup";
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    let control = Control::open(&env.mount).map_err(|e| {
        Failure::sys("open", who, e).also(format!("{}/control (kdbusfs mounted?)", env.mount))
    })?;
    BusMaker::new(format!("{euid}-{stem}-{}", std::process::id()))
        .make(control)
        .map_err(|e| Failure::sys("BUS_MAKE", who, e))
}

fn hello(endpoint: &std::path::Path, who: &str) -> Result<Connection, Failure> {
    let flags = uapi::KDBUS_HELLO_ACCEPT_FD as u64;
    let c = Connection::hello(endpoint, flags, 0, 0, POOL_SIZE)
        .map_err(|e| Failure::sys("HELLO", who.to_owned(), e))?;
    c.free(c.hello_reply().offset)
        .map_err(|e| Failure::sys("FREE", who.to_owned(), e))?;
    Ok(c)
}

/// The raw kdbus server: HELLO on `endpoint`, own [`NAME`], echo every
/// call's PAYLOAD_VEC until the process is ended.
pub fn serve_kdbus_raw(endpoint: &str) -> Result<(), Failure> {
    let who = "kdbus server";
    let conn = hello(std::path::Path::new(endpoint), who)?;
    conn.name_acquire(NAME, 0)
        .map_err(|e| Failure::sys("NAME_ACQUIRE", who, e).also(NAME))?;
    println!("ready id {}", conn.id());
    kbench::serve(&conn, Serve::EchoAny, &AtomicBool::new(false))
}

// --- kdbus through the D-Bus client library ------------------------------------

/// A client of the project's D-Bus client library: `Echo(ay)` as a
/// synchronous method call (`call_method`, GVariant marshalling through
/// zvariant, `SEND_SYNC_REPLY` in the kernel), the reply unmarshalled and
/// spot-checked. The bytes go through `serde_bytes`, the way a zbus user
/// passes a byte array (one copy, as `sd_bus_message_append_array`).
struct KdbusDbusPeer {
    conn: kdbus_client::Connection,
}

fn client_err(op: &'static str, who: &str, e: kdbus_client::Error) -> Failure {
    match e.errno() {
        Some(errno) => Failure::sys(op, who.to_owned(), errno).also(&e),
        None => Failure::bad(op, who.to_owned(), e.to_string()),
    }
}

impl Peer for KdbusDbusPeer {
    fn call(&mut self, payload: &[u8]) -> Result<(), Failure> {
        let who = "kdbus D-Bus client";
        let reply = self
            .conn
            .call_method(
                NAME,
                PATH,
                Some(IFACE),
                MEMBER,
                &serde_bytes::Bytes::new(payload),
            )
            .map_err(|e| client_err("call", who, e))?;
        let got: serde_bytes::ByteBuf = reply.body().map_err(|e| client_err("body", who, e))?;
        check(who, &got, payload.len())
    }
}

fn client_connect(endpoint: &str, who: &str) -> Result<kdbus_client::Connection, Failure> {
    // A description is a "sysname" (connection.md 3): no spaces.
    kdbus_client::ConnectionBuilder::path(endpoint)
        .pool_size(POOL_SIZE)
        .description(who.replace(' ', "-"))
        .build()
        .map_err(|e| client_err("HELLO", who, e).also(endpoint))
}

fn start_kdbus_dbus(env: &Env) -> Result<Running, Failure> {
    let bus = make_bus(env, "peersd")?;
    let ep = bus.endpoint().to_string_lossy().into_owned();
    let mut p = Proc::spawn(
        "kdbus D-Bus server",
        env.server(&["kdbus-dbus", &ep]),
        &env.dir.join("kdbus-dbus-server.log"),
        Vec::new(),
        false,
    )?;
    p.ready(READY_TIMEOUT)?;
    let conn = client_connect(&ep, "kdbus D-Bus client")?;
    Ok(Running {
        peer: Box::new(KdbusDbusPeer { conn }),
        procs: vec![p],
        bus: Some(bus),
        about: format!(
            "kdbus D-Bus: lib/kdbus-client on both ends (default HELLO: creds, pids, names and \
             more metadata attached to each message): call_method of {NAME} {PATH} \
             {IFACE}.{MEMBER}(ay) as a sync SEND; the server (another process) receives, \
             unmarshals and replies with the same bytes"
        ),
    })
}

/// The client-library server: owns [`NAME`] and answers every
/// `Echo(ay)` with the same bytes, until the process is ended.
pub fn serve_kdbus_dbus(endpoint: &str) -> Result<(), Failure> {
    let who = "kdbus D-Bus server";
    let conn = client_connect(endpoint, who)?;
    let flags = kdbus_client::RequestNameFlags::DO_NOT_QUEUE;
    match conn.request_name(NAME, flags) {
        Ok(kdbus_client::RequestNameReply::PrimaryOwner) => {}
        Ok(other) => return Err(Failure::bad("RequestName", who, format!("{other:?}"))),
        Err(e) => return Err(client_err("RequestName", who, e)),
    }
    println!("ready {}", conn.unique_name());
    loop {
        let Some(call) = conn
            .receive(None)
            .map_err(|e| client_err("receive", who, e))?
        else {
            continue;
        };
        if call.message_type() != kdbus_client::wire::MessageType::MethodCall {
            continue;
        }
        let bytes: serde_bytes::ByteBuf = call.body().map_err(|e| client_err("body", who, e))?;
        conn.reply(&call, &bytes)
            .map_err(|e| client_err("reply", who, e))?;
    }
}

// --- sd-bus through a broker ---------------------------------------------------

fn start_sdbus(env: &Env, bus: &str, broker: Proc, address: &str) -> Result<Running, Failure> {
    let mut server = Proc::spawn(
        &format!("sd-bus server on {bus}"),
        env.server(&["sdbus", address]),
        &env.dir.join(format!("sdbus-server-{bus}.log")),
        Vec::new(),
        false,
    )?;
    server.ready(READY_TIMEOUT)?;
    let client = sdbus::Client::connect(address, &format!("sd-bus client via {bus}"))?;
    Ok(Running {
        peer: Box::new(client),
        procs: vec![server, broker],
        bus: None,
        about: format!(
            "{bus}: sd-bus on both ends: sd_bus_call of {NAME} {PATH} {IFACE}.{MEMBER}(ay) through \
             the broker; the server (another process) answers from an sd_bus_add_object callback"
        ),
    })
}
