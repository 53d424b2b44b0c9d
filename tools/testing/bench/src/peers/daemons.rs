//! The two message buses, each started on a private config in the run's
//! directory and ended with the run.
//!
//! * dbus-daemon: `dbus-daemon --config-file=DIR/dbus-daemon.conf --nofork
//!   --print-address=1`; it listens on `DIR/dbus-daemon.sock` and prints
//!   its address when ready.
//! * dbus-broker: the broker itself takes its listening socket and its
//!   policy over a controller protocol whose policy format is not stable,
//!   so it is started as Debian's service does, through
//!   `dbus-broker-launch --scope user --config-file DIR/dbus-broker.conf`,
//!   with the socket activation systemd would do done here: this program
//!   binds and listens on `DIR/dbus-broker.sock` and hands it over as fd 3
//!   with `LISTEN_FDS=1` and `LISTEN_PID` = the launcher's PID (it connects
//!   back to its own bus as a client, so `DBUS_SESSION_BUS_ADDRESS` names
//!   the same socket). The launcher logs only to the journal and refuses
//!   to start without `/run/systemd/journal/socket`, so a wrapper process
//!   (`kdbus-bench-peers broker-launch ...`) gives it one of its own: in a
//!   private mount namespace it mounts a tmpfs on `/run` (the host's `/run`
//!   is not touched), binds a datagram socket there, starts the launcher,
//!   copies its journal messages to the log and says `ready` when the
//!   launcher logs `Ready`.
//!
//!   The launcher also watches its configuration directories with inotify
//!   and will not start without it; the test kernels have no
//!   `CONFIG_INOTIFY_USER`, so there the wrapper preloads
//!   `tools/testing/vm/noinotify.c` (built as a shared library, given with
//!   `--inotify-shim`), which stands in for inotify only when the kernel
//!   answers ENOSYS. Nothing on the measured path uses it.

use std::ffi::CString;
use std::io::Write;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixDatagram, UnixListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kdbus::Errno;
use kdbus_bench::timing::Failure;

use crate::proc::Proc;
use crate::transport::{Env, READY_TIMEOUT};

/// The listening socket's descriptor number in the launcher
/// (`SD_LISTEN_FDS_START`).
const LISTEN_FD: i32 = 3;
const JOURNAL_DIR: &str = "/run/systemd/journal";
const JOURNAL_SOCKET: &str = "/run/systemd/journal/socket";

/// A bus configuration of our own: a private session-type bus, EXTERNAL
/// authentication, everyone may own any name and call anyone; `listen` for
/// dbus-daemon (dbus-broker-launch gets its socket passed instead).
pub fn config(listen: Option<&Path>) -> String {
    let listen = listen.map_or(String::new(), |p| {
        format!("  <listen>unix:path={}</listen>\n", p.display())
    });
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- kdbus-bench-peers: a private bus for the benchmark -->
<busconfig>
  <type>session</type>
{listen}  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#
    )
}

fn write_file(path: &Path, text: &str, who: &str) -> Result<(), Failure> {
    std::fs::write(path, text)
        .map_err(|e| Failure::bad("write", who, format!("{}: {e}", path.display())))
}

/// The first line of `prog --version`.
pub fn version(prog: &Path) -> String {
    Command::new(prog)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "version unknown".into())
}

/// Starts dbus-daemon; returns it and its address.
pub fn dbus_daemon(env: &Env) -> Result<(Proc, String), Failure> {
    let who = "dbus-daemon";
    let sock = env.dir.join("dbus-daemon.sock");
    let conf = env.dir.join("dbus-daemon.conf");
    write_file(&conf, &config(Some(&sock)), who)?;
    let mut cmd = Command::new(&env.dbus_daemon);
    cmd.arg(format!("--config-file={}", conf.display()))
        .arg("--nofork")
        .arg("--print-address=1");
    let mut p = Proc::spawn(who, cmd, &env.dir.join("dbus-daemon.log"), Vec::new(), true)?;
    let address = p.ready(READY_TIMEOUT)?;
    if !address.starts_with("unix:") {
        return Err(Failure::bad("ready", who, format!("printed {address:?}")));
    }
    Ok((p, address))
}

/// Whether this kernel lacks inotify (`inotify_init1` fails with ENOSYS).
pub fn inotify_missing() -> bool {
    // SAFETY: a plain system call; the descriptor is closed right away.
    unsafe {
        let fd = libc::inotify_init1(libc::IN_CLOEXEC);
        if fd >= 0 {
            libc::close(fd);
            return false;
        }
    }
    Errno::last() == Errno::ENOSYS
}

/// Starts dbus-broker through dbus-broker-launch and the wrapper; returns
/// the wrapper and the bus address.
pub fn dbus_broker(env: &Env) -> Result<(Proc, String), Failure> {
    let who = "dbus-broker";
    let sock = env.dir.join("dbus-broker.sock");
    let conf = env.dir.join("dbus-broker.conf");
    write_file(&conf, &config(None), who)?;
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)
        .map_err(|e| Failure::bad("bind", who, format!("{}: {e}", sock.display())))?;
    let address = format!("unix:path={}", sock.display());
    let mut cmd = Command::new(&env.exe);
    cmd.arg("broker-launch")
        .arg(&env.broker_launch)
        .arg(&conf)
        .arg(&address)
        .arg(env.inotify_shim.as_deref().unwrap_or(Path::new("-")));
    let fd: OwnedFd = listener.into();
    let mut p = Proc::spawn(
        "dbus-broker (launcher wrapper)",
        cmd,
        &env.dir.join("dbus-broker.log"),
        vec![(fd, LISTEN_FD)],
        false,
    )?;
    p.ready(READY_TIMEOUT)?;
    Ok((p, address))
}

/// The fields of a journal native-protocol datagram: `KEY=value\n`, or
/// `KEY\n` + a little-endian 64-bit length + the value + `\n`.
pub fn journal_fields(mut d: &[u8]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    while !d.is_empty() {
        let Some(nl) = d.iter().position(|&b| b == b'\n') else {
            break;
        };
        let line = &d[..nl];
        if let Some(eq) = line.iter().position(|&b| b == b'=') {
            out.push((
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            ));
            d = &d[nl + 1..];
        } else {
            let rest = &d[nl + 1..];
            if rest.len() < 8 {
                break;
            }
            let n = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            let Some(value) = rest.get(8..8 + n) else {
                break;
            };
            out.push((
                String::from_utf8_lossy(line).into_owned(),
                String::from_utf8_lossy(value).into_owned(),
            ));
            d = rest.get(8 + n + 1..).unwrap_or(&[]);
        }
    }
    out
}

fn field<'a>(f: &'a [(String, String)], key: &str) -> &'a str {
    f.iter()
        .find(|(k, _)| k == key)
        .map_or("", |(_, v)| v.as_str())
}

fn sys(op: &'static str, who: &str) -> Failure {
    Failure::sys(op, who, Errno::last())
}

/// A private `/run` with a journal socket, in a new mount namespace of
/// this process.
fn private_journal(who: &str) -> Result<UnixDatagram, Failure> {
    if !Path::new("/run").is_dir() {
        // The test VM's initramfs has none.
        std::fs::create_dir("/run")
            .map_err(|e| Failure::bad("mkdir", who, format!("/run: {e}")))?;
    }
    // SAFETY: plain system calls on constant, NUL-terminated strings.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(sys("unshare", who).also(
                "dbus-broker-launch logs only to the journal: a private /run with a journal \
                 socket needs a mount namespace (root)",
            ));
        }
        if libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ) != 0
        {
            return Err(sys("mount", who).also("making / private"));
        }
        if libc::mount(
            c"tmpfs".as_ptr(),
            c"/run".as_ptr(),
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"mode=0755".as_ptr().cast(),
        ) != 0
        {
            return Err(sys("mount", who).also("tmpfs on /run"));
        }
    }
    std::fs::create_dir_all(JOURNAL_DIR)
        .map_err(|e| Failure::bad("mkdir", who, format!("{JOURNAL_DIR}: {e}")))?;
    UnixDatagram::bind(JOURNAL_SOCKET)
        .map_err(|e| Failure::bad("bind", who, format!("{JOURNAL_SOCKET}: {e}")))
}

/// `kdbus-bench-peers broker-launch LAUNCHER CONFIG ADDRESS SHIM`, with
/// the listening socket as fd 3: see the module documentation. SHIM is the
/// inotify stand-in, or `-`. Runs until its stdin closes, then ends the
/// launcher (and so the broker).
pub fn broker_launch(
    launcher: &Path,
    config: &Path,
    address: &str,
    shim: &Path,
) -> Result<(), Failure> {
    let who = "broker-launch";
    let preload = if inotify_missing() {
        if shim == Path::new("-") || !shim.is_file() {
            return Err(Failure::bad(
                "inotify_init1",
                who,
                format!(
                    "this kernel has no inotify (CONFIG_INOTIFY_USER), which dbus-broker-launch \
                     needs; the stand-in tools/testing/vm/noinotify.c (--inotify-shim) {}",
                    if shim == Path::new("-") {
                        "was not given".to_owned()
                    } else {
                        format!("{} is missing", shim.display())
                    }
                ),
            ));
        }
        eprintln!(
            "broker-launch: no inotify in this kernel: LD_PRELOAD={}",
            shim.display()
        );
        Some(shim)
    } else {
        None
    };
    // SAFETY: fstat of a descriptor number into a zeroed stat.
    let is_sock = unsafe {
        let mut st: libc::stat = std::mem::zeroed();
        libc::fstat(LISTEN_FD, &mut st) == 0 && st.st_mode & libc::S_IFMT == libc::S_IFSOCK
    };
    if !is_sock {
        return Err(Failure::bad(
            "fstat",
            who,
            "fd 3 is not the listening socket",
        ));
    }
    let journal = private_journal(who)?;
    // LISTEN_PID must be the launcher's own PID: a shell that execs it
    // keeps its PID ($$).
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"LISTEN_PID=$$ exec "$0" "$@""#)
        .arg(launcher)
        .args(["--scope", "user", "--config-file"])
        .arg(config)
        .env("LISTEN_FDS", "1")
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .env_remove("LISTEN_FDNAMES")
        .env_remove("NOTIFY_SOCKET");
    if let Some(p) = preload {
        cmd.env("LD_PRELOAD", p);
    }
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| Failure::bad("spawn", who, format!("{}: {e}", launcher.display())))?;
    let mut ready = false;
    let mut buf = vec![0u8; 1 << 16];
    let result = loop {
        let mut fds = [
            libc::pollfd {
                fd: journal.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: 0,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 200) };
        if n < 0 && Errno::last() != Errno::EINTR {
            break Err(sys("poll", who));
        }
        if fds[0].revents & libc::POLLIN != 0 {
            if let Ok(len) = journal.recv(&mut buf) {
                let f = journal_fields(&buf[..len]);
                let (ident, msg) = (field(&f, "SYSLOG_IDENTIFIER"), field(&f, "MESSAGE"));
                eprintln!("journal: {ident}[{}]: {msg}", field(&f, "PRIORITY"));
                if !ready && ident == "dbus-broker-launch" && msg == "Ready" {
                    ready = true;
                    let mut out = std::io::stdout();
                    let _ = writeln!(out, "ready").and_then(|()| out.flush());
                }
            }
        }
        if fds[1].revents != 0 {
            let mut b = [0u8; 64];
            // SAFETY: reading into a local buffer.
            let r = unsafe { libc::read(0, b.as_mut_ptr().cast(), b.len()) };
            if r <= 0 {
                break Ok(());
            }
        }
        if let Ok(Some(s)) = child.try_wait() {
            break Err(Failure::bad(
                "dbus-broker-launch",
                who,
                format!("exited: {s} (its journal messages are above)"),
            ));
        }
    };
    // SAFETY: signalling our own child (a no-op if it has exited).
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(5);
    while matches!(child.try_wait(), Ok(None)) {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    result
}

/// `name` looked up in `$PATH`.
pub fn which(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    let Ok(c) = CString::new(p.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: a NUL-terminated path.
    p.is_file() && unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn journal_datagrams_parse() {
        let mut d = b"PRIORITY=6\nSYSLOG_IDENTIFIER=dbus-broker-launch\nMESSAGE\n".to_vec();
        d.extend_from_slice(&5u64.to_le_bytes());
        d.extend_from_slice(b"Re\ndy\nCODE_LINE=1443\n");
        let f = journal_fields(&d);
        assert_eq!(field(&f, "PRIORITY"), "6");
        assert_eq!(field(&f, "SYSLOG_IDENTIFIER"), "dbus-broker-launch");
        assert_eq!(field(&f, "MESSAGE"), "Re\ndy");
        assert_eq!(field(&f, "CODE_LINE"), "1443");
        assert_eq!(field(&f, "NONE"), "");
        // Truncated binary field: parsing stops, nothing panics.
        let f = journal_fields(b"A=1\nMESSAGE\n\x10\0\0");
        assert_eq!(f.len(), 1);
    }

    #[test]
    fn configs() {
        let c = config(Some(Path::new("/tmp/x/bus.sock")));
        assert!(c.contains("<listen>unix:path=/tmp/x/bus.sock</listen>"));
        assert!(c.contains("<allow own=\"*\"/>"));
        assert!(!config(None).contains("<listen>"));
        assert!(which("sh").is_some());
        assert!(which("no-such-program-kdbus").is_none());
    }
}
