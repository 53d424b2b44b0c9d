//! `make-bus` and `make-endpoint`: the object lives as long as its owner
//! handle is open, so this process (or, with `--background`, a forked
//! child) holds the handle until it is killed, as systemd's PID 1 held the
//! system bus.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use kdbus::consts::*;
use kdbus::{uapi, BusMaker, CmdBuf, Control, Errno};

use crate::bus::{bus_dir, euid, prefixed};
use crate::cli::{HoldArgs, MakeBusArgs, MakeEndpointArgs};
use crate::error::{errno_text, usage, CtlError, Result};

/// The bus-name rule of bus.md 2 (also endpoint names): 1-63 characters of
/// `[A-Za-z0-9_]`, `-` and `.` inside.
fn check_sysname(what: &str, n: &str) -> Result<()> {
    let b = n.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= 63
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'))
        && !matches!(b[0], b'-' | b'.')
        && !matches!(b[b.len() - 1], b'-' | b'.');
    if ok {
        Ok(())
    } else {
        Err(usage(format!(
            "invalid {what} name '{n}': 1-63 characters of A-Z a-z 0-9 _, with - and . only inside"
        )))
    }
}

/// One `--policy NAME=ACCESS[:user:UID|:group:GID|:world]` rule:
/// (name, type, access, id).
pub fn parse_policy(rule: &str) -> Result<(String, u64, u64, u64)> {
    let bad = |why: &str| {
        usage(format!(
            "invalid policy rule '{rule}': {why} (NAME=see|talk|own[:user:UID|:group:GID|:world])"
        ))
    };
    let (name, spec) = rule.split_once('=').ok_or_else(|| bad("no '='"))?;
    let wildcard = name.strip_suffix(".*");
    if !kdbus::valid_name(wildcard.unwrap_or(name), false) {
        return Err(bad("not a well-known name or prefix.*"));
    }
    let mut parts = spec.split(':');
    let access = match parts.next() {
        Some("see") => uapi::KDBUS_POLICY_SEE as u64,
        Some("talk") => uapi::KDBUS_POLICY_TALK as u64,
        Some("own") => uapi::KDBUS_POLICY_OWN as u64,
        _ => return Err(bad("ACCESS must be see, talk or own")),
    };
    let (ty, id) = match (parts.next(), parts.next(), parts.next()) {
        (None, _, _) | (Some("world"), None, _) => (uapi::KDBUS_POLICY_ACCESS_WORLD as u64, 0),
        (Some("user"), Some(id), None) => (
            uapi::KDBUS_POLICY_ACCESS_USER as u64,
            id.parse::<u32>().map_err(|_| bad("bad uid"))? as u64,
        ),
        (Some("group"), Some(id), None) => (
            uapi::KDBUS_POLICY_ACCESS_GROUP as u64,
            id.parse::<u32>().map_err(|_| bad("bad gid"))? as u64,
        ),
        _ => return Err(bad("who must be user:UID, group:GID or world")),
    };
    Ok((name.to_string(), ty, access, id))
}

/// The ENDPOINT_UPDATE command of `rules`: one NAME item per name (in
/// first-seen order), each followed by its POLICY_ACCESS items.
pub fn policy_cmd(rules: &[(String, u64, u64, u64)]) -> CmdBuf {
    let mut c = CmdBuf::cmd(0);
    let mut order: Vec<&str> = Vec::new();
    for (n, ..) in rules {
        if !order.contains(&n.as_str()) {
            order.push(n);
        }
    }
    for n in order {
        c.push_str(ITEM_NAME, n);
        for (_, ty, access, id) in rules.iter().filter(|r| r.0 == n) {
            c.push_u64s(ITEM_POLICY_ACCESS, &[*ty, *access, *id]);
        }
    }
    c
}

/// Holds `fd` (the owner handle) until killed: in this process, or in a
/// forked child with `--background`. Prints `what` (the new file) on
/// stdout first.
fn hold(fd: OwnedFd, what: &Path, h: &HoldArgs) -> Result<()> {
    use std::io::Write;
    println!("{}", what.display());
    let _ = std::io::stdout().flush();
    let write_pid = |pid: i32| -> Result<()> {
        if let Some(f) = &h.pid_file {
            std::fs::write(f, format!("{pid}\n"))
                .map_err(|e| CtlError::Failure(format!("cannot write {}: {e}", f.display())))?;
        }
        Ok(())
    };
    if h.background {
        // SAFETY: no other threads exist; the child only calls
        // async-signal-safe functions (setsid, open, dup2, close, pause).
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            return Err(CtlError::errno("fork failed", Errno::last()));
        }
        if pid > 0 {
            write_pid(pid)?;
            eprintln!(
                "kdbusctl: {} is held by pid {pid} (kill {pid} to remove it)",
                what.display()
            );
            // The child keeps its copy of the handle; ours may close.
            drop(fd);
            return Ok(());
        }
        // SAFETY: plain system calls on our own descriptors.
        unsafe {
            libc::setsid();
            let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
            if null >= 0 {
                libc::dup2(null, 0);
                libc::dup2(null, 1);
                libc::dup2(null, 2);
                if null > 2 {
                    libc::close(null);
                }
            }
            let _keep = fd.as_raw_fd();
            loop {
                libc::pause();
            }
        }
    }
    // SAFETY: getpid has no preconditions.
    write_pid(unsafe { libc::getpid() })?;
    eprintln!(
        "kdbusctl: holding {} until killed (pid {})",
        what.display(),
        std::process::id()
    );
    let _keep = fd;
    loop {
        // SAFETY: pause has no preconditions.
        unsafe {
            libc::pause();
        }
    }
}

/// `kdbusctl make-bus`.
pub fn make_bus(a: &MakeBusArgs) -> Result<()> {
    let name = prefixed(&a.name);
    check_sysname("bus", &name)?;
    if a.bloom_size < 8
        || a.bloom_size > 4096
        || !a.bloom_size.is_multiple_of(8)
        || a.bloom_hashes == 0
    {
        return Err(usage(format!(
            "invalid bloom parameters {} bytes / {} hashes: the size must be a multiple of 8 in 8..4096, at least 1 hash",
            a.bloom_size, a.bloom_hashes
        )));
    }
    let control = Control::open(&a.mount).map_err(|e| {
        let p = a.mount.join("control");
        let base = format!("cannot open {}: {}", p.display(), errno_text(e));
        match e {
            Errno::ENOENT => CtlError::NoBus(format!(
                "{base}: is kdbusfs mounted? (load kdbus.ko with kdbus=1, `mount -t kdbusfs kdbusfs {}`)",
                a.mount.display()
            )),
            e => CtlError::errno(&base, e),
        }
    })?;
    let mut m = BusMaker::new(name.clone())
        .bloom(a.bloom_size, a.bloom_hashes)
        .flags(a.hold.access.flags());
    if a.creator_info {
        m = m.attach_flags_send(kdbus::ATTACH_ALL);
    }
    let bus = m.make(control).map_err(|e| {
        let base = format!("cannot make bus {name}: {}", errno_text(e));
        match e {
            Errno::EEXIST => CtlError::Failure(format!("{base}: a bus of that name exists")),
            Errno::EMFILE => CtlError::Failure(format!("{base}: this user owns 16 buses already")),
            Errno::EINVAL => CtlError::Usage(format!(
                "{base}: the name must start with the caller's euid ({}-)",
                euid()
            )),
            e => CtlError::errno(&base, e),
        }
    })?;
    let endpoint = bus.endpoint();
    hold(bus.into_fd(), &endpoint, &a.hold)
}

/// `kdbusctl make-endpoint`.
pub fn make_endpoint(a: &MakeEndpointArgs) -> Result<()> {
    let name = prefixed(&a.name);
    check_sysname("endpoint", &name)?;
    let rules = a
        .policy
        .iter()
        .map(|r| parse_policy(r))
        .collect::<Result<Vec<_>>>()?;
    let dir: PathBuf = bus_dir(&a.bus, &a.mount);
    let default_ep = dir.join("bus");
    let fd =
        kdbus::open_endpoint(&default_ep).map_err(|e| crate::bus::open_error(&default_ep, e))?;
    let mut cmd = CmdBuf::cmd(a.hold.access.flags());
    cmd.push_str(ITEM_MAKE_NAME, &name);
    kdbus::ioctl(&fd, uapi::KDBUS_CMD_ENDPOINT_MAKE, cmd.words_mut()).map_err(|e| {
        let base = format!("cannot make endpoint {name} on {}: {}", dir.display(), errno_text(e));
        match e {
            Errno::EPERM => CtlError::Permission(format!(
                "{base}: only the bus owner (its creator's uid, or CAP_IPC_OWNER) may make endpoints"
            )),
            Errno::EEXIST => CtlError::Failure(format!("{base}: an endpoint of that name exists")),
            e => CtlError::errno(&base, e),
        }
    })?;
    if !rules.is_empty() {
        let mut up = policy_cmd(&rules);
        kdbus::ioctl(&fd, uapi::KDBUS_CMD_ENDPOINT_UPDATE, up.words_mut()).map_err(|e| {
            CtlError::errno(&format!("cannot set the policy of endpoint {name}"), e)
        })?;
    }
    hold(fd, &dir.join(&name), &a.hold)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_rules() {
        let w = uapi::KDBUS_POLICY_ACCESS_WORLD as u64;
        let u = uapi::KDBUS_POLICY_ACCESS_USER as u64;
        let g = uapi::KDBUS_POLICY_ACCESS_GROUP as u64;
        assert_eq!(
            parse_policy("org.example.Echo=talk").unwrap(),
            ("org.example.Echo".into(), w, 1, 0)
        );
        assert_eq!(
            parse_policy("a.b=own:user:1000").unwrap(),
            ("a.b".into(), u, 2, 1000)
        );
        assert_eq!(
            parse_policy("a.b.*=see:group:7").unwrap(),
            ("a.b.*".into(), g, 0, 7)
        );
        assert_eq!(parse_policy("a.b=see:world").unwrap().1, w);
        for bad in [
            "a.b",
            "nodots=talk",
            "a.b=write",
            "a.b=own:user:x",
            "a.b=own:nobody",
            "a.b=own:user:1:2",
        ] {
            let e = parse_policy(bad).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::EXIT_USAGE, "{bad}");
        }
        let c = policy_cmd(&[
            parse_policy("a.b=talk").unwrap(),
            parse_policy("c.d=own:user:5").unwrap(),
            parse_policy("a.b=own:user:0").unwrap(),
        ]);
        let items = c.items().collect_items().unwrap();
        let tys: Vec<u64> = items.iter().map(|i| i.ty).collect();
        assert_eq!(
            tys,
            vec![
                ITEM_NAME,
                ITEM_POLICY_ACCESS,
                ITEM_POLICY_ACCESS,
                ITEM_NAME,
                ITEM_POLICY_ACCESS
            ]
        );
        assert_eq!(items[0].as_str(), Some("a.b"));
        assert_eq!(items[2].u64s(), Some(vec![u, 2, 0]));
        assert_eq!(items[4].u64s(), Some(vec![u, 2, 5]));
    }

    #[test]
    fn sysnames() {
        assert!(check_sysname("bus", "0-test").is_ok());
        assert!(check_sysname("bus", "0-te.st_1").is_ok());
        assert!(check_sysname("bus", "0-").is_err());
        assert!(check_sysname("bus", &format!("0-{}", "x".repeat(62))).is_err());
        assert!(check_sysname("bus", "0-a/b").is_err());
    }
}
