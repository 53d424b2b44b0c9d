//! The command line (clap derive). The man page is generated from these
//! definitions (`man.rs`).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `--json=` formats (busctl's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JsonMode {
    /// One line per object.
    Short,
    /// Indented, busctl's layout (8 spaces, `" : "`).
    Pretty,
}

/// File modes of a bus or endpoint (`KDBUS_MAKE_ACCESS_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Access {
    /// 0600 files: only the creator's uid (and CAP_IPC_OWNER).
    Owner,
    /// KDBUS_MAKE_ACCESS_GROUP: group read-write too.
    Group,
    /// KDBUS_MAKE_ACCESS_WORLD: everybody may connect.
    World,
}

impl Access {
    /// The `KDBUS_MAKE_*` flags.
    pub fn flags(self) -> u64 {
        match self {
            Access::Owner => 0,
            Access::Group => kdbus::consts::MAKE_ACCESS_GROUP,
            Access::World => kdbus::consts::MAKE_ACCESS_WORLD | kdbus::consts::MAKE_ACCESS_GROUP,
        }
    }
}

const AFTER_HELP: &str = "\
Exit status: 0 success; 1 failure or D-Bus error reply; 2 usage error (bad \
arguments, signatures, names, match rules); 3 bus not found (no kdbusfs or \
no such bus/endpoint); 4 name has no owner / service unknown; 5 permission \
denied; 6 timeout or no reply.

Buses: --system (default) is /sys/fs/kdbus/0-system/bus, --user \
/sys/fs/kdbus/<uid>-user/bus; --bus takes an endpoint file, a bus directory, \
a `kernel:path=` address or a bus name (`test` = `<euid>-test`).";

/// Introspect and talk to a kdbus bus, modelled on busctl(1).
#[derive(Debug, Parser)]
#[command(
    name = "kdbusctl",
    version,
    about = "Introspect and talk to a kdbus bus (modelled on busctl)",
    long_about = "kdbusctl lists the peers and names of a kdbus bus, shows a peer's \
credentials, monitors and captures the bus traffic, calls methods and emits \
signals with busctl's argument syntax, and makes buses and custom endpoints.",
    after_help = AFTER_HELP,
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Connect to this endpoint: a file (`/sys/fs/kdbus/0-test/bus`), a bus
    /// directory, a `kernel:path=...` address, or a bus name (`test` or
    /// `0-test`).
    #[arg(long, global = true, value_name = "BUS", conflicts_with_all = ["user", "system"])]
    pub bus: Option<String>,
    /// Connect to the calling user's bus (`/sys/fs/kdbus/<uid>-user/bus`).
    #[arg(long, global = true, conflicts_with = "system")]
    pub user: bool,
    /// Connect to the system bus (`/sys/fs/kdbus/0-system/bus`; the default).
    #[arg(long, global = true)]
    pub system: bool,
    /// Print JSON (busctl's format) instead of text.
    #[arg(long, global = true, value_name = "MODE", num_args = 0..=1,
          default_missing_value = "pretty", require_equals = true)]
    pub json: Option<JsonMode>,
    /// Do not print the column headers of `list`.
    #[arg(long, global = true)]
    pub no_legend: bool,
    /// Write the man page (roff) to stdout and exit.
    #[arg(long, hide = true)]
    pub generate_man: bool,
    /// The command.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the peers and names of the bus: unique names, well-known names
    /// with their primary owner, queued owners and activatable names, with
    /// the owner's pid, process name, user and description.
    List(ListArgs),
    /// Show what the kernel knows about a peer (credentials, pids, comm,
    /// exe, cmdline, cgroup, capabilities, names, description), or about the
    /// bus creator if no peer is given.
    Status(StatusArgs),
    /// Watch the bus: every message and kernel notification, with its
    /// header, timestamps, metadata and decoded body (needs the bus owner's
    /// uid or CAP_IPC_OWNER: a kdbus monitor connection).
    Monitor(MonitorArgs),
    /// Call a method and print the reply (busctl's argument syntax).
    Call(CallArgs),
    /// Emit a signal: a broadcast with a bloom filter, or a unicast signal
    /// with --destination.
    Emit(EmitArgs),
    /// Write the bus traffic to FILE as a pcap capture (LINKTYPE_DBUS, the
    /// messages in dbus1 marshalling) that Wireshark opens.
    Capture(CaptureArgs),
    /// Make a bus (BUS_MAKE on <mount>/control) and keep it alive while
    /// this process runs.
    MakeBus(MakeBusArgs),
    /// Make a custom endpoint on a bus with its own policy and keep it
    /// alive while this process runs.
    MakeEndpoint(MakeEndpointArgs),
}

/// `list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only unique names (`:1.<id>`).
    #[arg(long)]
    pub unique: bool,
    /// Only well-known names (owned, queued and activatable).
    #[arg(long)]
    pub acquired: bool,
    /// Only names with an activator.
    #[arg(long)]
    pub activatable: bool,
}

/// `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// A well-known name, a unique name (`:1.7`) or a connection id (`7`);
    /// none: the bus creator (BUS_CREATOR_INFO).
    pub peer: Option<String>,
}

/// Options shared by `monitor` and `capture`.
#[derive(Debug, Args, Clone)]
pub struct WatchArgs {
    /// A D-Bus match rule the messages must match (repeatable; a message is
    /// shown if it matches any rule).
    #[arg(long = "match", value_name = "RULE")]
    pub matches: Vec<String>,
    /// Exit after this many messages (after filtering).
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit after this many seconds.
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
}

/// `monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// Service names (messages from or to them are shown) or match rules
    /// (`type='signal',member='Echoed'`); none: everything.
    #[arg(value_name = "SERVICE|MATCH")]
    pub filters: Vec<String>,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// `capture`.
#[derive(Debug, Args)]
pub struct CaptureArgs {
    /// The pcap file to write (`-`: stdout, refused if it is a terminal).
    pub file: PathBuf,
    /// Service names or match rules, as for `monitor`.
    #[arg(value_name = "SERVICE|MATCH")]
    pub filters: Vec<String>,
    /// The pcap snapshot length: longer messages are truncated.
    #[arg(long, value_name = "BYTES", default_value_t = crate::pcap::DEFAULT_SNAPLEN)]
    pub size: u32,
    #[command(flatten)]
    pub watch: WatchArgs,
}

/// `call`.
#[derive(Debug, Args)]
pub struct CallArgs {
    /// The destination: a well-known or unique name.
    pub destination: String,
    /// The object path.
    pub path: String,
    /// The interface.
    pub interface: String,
    /// The method.
    pub member: String,
    /// The body signature, e.g. `s`, `as`, `a{sv}`, `(si)`.
    pub signature: Option<String>,
    /// The arguments in busctl's syntax: `s hello`, `as 3 a b c`,
    /// `a{sv} 1 key s val`, `(si) str 5`, `v s x`.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Print the whole reply message (header and body tree).
    #[arg(long)]
    pub verbose: bool,
    /// Do not print the reply.
    #[arg(short, long)]
    pub quiet: bool,
    /// Wait this many seconds for the reply.
    #[arg(long, value_name = "SECS", default_value_t = 25.0)]
    pub timeout: f64,
    /// Expect a reply (false: send with NO_REPLY_EXPECTED and return).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub expect_reply: bool,
    /// Allow activation (false: NO_AUTO_START).
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_start: bool,
}

/// `emit`.
#[derive(Debug, Args)]
pub struct EmitArgs {
    /// The object path.
    pub path: String,
    /// The interface.
    pub interface: String,
    /// The signal name.
    pub member: String,
    /// The body signature.
    pub signature: Option<String>,
    /// The arguments in busctl's syntax.
    #[arg(allow_hyphen_values = true)]
    pub args: Vec<String>,
    /// Send to this name only (a unicast signal) instead of broadcasting.
    #[arg(long, value_name = "NAME")]
    pub destination: Option<String>,
}

/// Options of `make-bus` and `make-endpoint` about keeping the object alive.
#[derive(Debug, Args, Clone)]
pub struct HoldArgs {
    /// Fork: a child process holds the bus or endpoint, the command returns
    /// once it exists (kill the child to remove it).
    #[arg(long)]
    pub background: bool,
    /// Write the holding process's pid to this file.
    #[arg(long, value_name = "FILE")]
    pub pid_file: Option<PathBuf>,
    /// Who may connect.
    #[arg(long, value_enum, default_value_t = Access::World)]
    pub access: Access,
}

/// `make-bus`.
#[derive(Debug, Args)]
pub struct MakeBusArgs {
    /// The bus name: `NAME` becomes `<euid>-NAME` (a name that already
    /// starts with `<euid>-` is kept).
    pub name: String,
    /// The kdbusfs mount.
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/kdbus")]
    pub mount: PathBuf,
    /// Bloom filter size in bytes (a multiple of 8, 8..4096).
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub bloom_size: u64,
    /// Number of bloom hash functions.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub bloom_hashes: u64,
    /// Let connections read the creator's metadata (BUS_CREATOR_INFO):
    /// an ATTACH_FLAGS_SEND item with every metadata kind.
    #[arg(long)]
    pub creator_info: bool,
    #[command(flatten)]
    pub hold: HoldArgs,
}

/// `make-endpoint`.
#[derive(Debug, Args)]
pub struct MakeEndpointArgs {
    /// The bus: a name (`test`, `0-test`), its directory or its `bus` file.
    pub bus: String,
    /// The endpoint name: `NAME` becomes `<euid>-NAME`.
    pub name: String,
    /// A policy rule `NAME=ACCESS[:user:UID|:group:GID|:world]`, ACCESS
    /// one of see, talk, own (repeatable; rules for one name form one
    /// entry; a `prefix.*` name is a wildcard entry). Without rules the
    /// endpoint lets its connections see, talk to and own nothing.
    #[arg(long, value_name = "RULE")]
    pub policy: Vec<String>,
    /// The kdbusfs mount (for bus names).
    #[arg(long, value_name = "DIR", default_value = "/sys/fs/kdbus")]
    pub mount: PathBuf,
    #[command(flatten)]
    pub hold: HoldArgs,
}
