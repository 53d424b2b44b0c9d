//! Metadata (metadata.md): every attach bit alone and all together, checked
//! against what the sender really is (/proc/self/status, cmdline, exe,
//! cgroup, comm, loginuid, sessionid); the receiver's and the sender's
//! masks; CONN_INFO and BUS_CREATOR_INFO snapshots; faked credentials; and
//! translation into a child user and pid namespace (also with a kdbusfs
//! mounted inside the user namespace), where no host pid or unmapped uid
//! may appear.

use std::path::{Path, PathBuf};

use kdbus::consts::*;
use kdbus::{align8, uapi, BusMaker, Connection, Control, Errno, ATTACH_ALL};

use super::sys::{Chan, ChildProc};
use super::util;
use crate::check::{expect_errno, expect_ok, skip, TestResult};
use crate::ctx::{require_root, Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

const T_TIMESTAMP: u64 = uapi::KDBUS_ITEM_TIMESTAMP as u64;
const T_CREDS: u64 = uapi::KDBUS_ITEM_CREDS as u64;
const T_PIDS: u64 = uapi::KDBUS_ITEM_PIDS as u64;
const T_AUXGROUPS: u64 = uapi::KDBUS_ITEM_AUXGROUPS as u64;
const T_OWNED_NAME: u64 = uapi::KDBUS_ITEM_OWNED_NAME as u64;
const T_TID_COMM: u64 = uapi::KDBUS_ITEM_TID_COMM as u64;
const T_PID_COMM: u64 = uapi::KDBUS_ITEM_PID_COMM as u64;
const T_EXE: u64 = uapi::KDBUS_ITEM_EXE as u64;
const T_CMDLINE: u64 = uapi::KDBUS_ITEM_CMDLINE as u64;
const T_CGROUP: u64 = uapi::KDBUS_ITEM_CGROUP as u64;
const T_CAPS: u64 = uapi::KDBUS_ITEM_CAPS as u64;
const T_SECLABEL: u64 = uapi::KDBUS_ITEM_SECLABEL as u64;
const T_AUDIT: u64 = uapi::KDBUS_ITEM_AUDIT as u64;
const T_DESCRIPTION: u64 = uapi::KDBUS_ITEM_CONN_DESCRIPTION as u64;

const A_CREDS: u64 = uapi::KDBUS_ATTACH_CREDS;
const A_PIDS: u64 = uapi::KDBUS_ATTACH_PIDS;
const A_AUXGROUPS: u64 = uapi::KDBUS_ATTACH_AUXGROUPS;
const A_NAMES: u64 = uapi::KDBUS_ATTACH_NAMES;
const A_TIMESTAMP: u64 = uapi::KDBUS_ATTACH_TIMESTAMP;
const A_DESCRIPTION: u64 = uapi::KDBUS_ATTACH_CONN_DESCRIPTION;
const A_SECLABEL: u64 = uapi::KDBUS_ATTACH_SECLABEL;
const IMPLICIT: u64 = A_CREDS | A_PIDS | A_AUXGROUPS | A_NAMES | A_DESCRIPTION | A_TIMESTAMP;
const PROC_ITEMS: u64 = ATTACH_ALL & !IMPLICIT;
const PROCESS: u64 = A_CREDS | A_PIDS | A_AUXGROUPS | PROC_ITEMS;

/// The fixed order of metadata.md 4.
const ORDER: [u64; 14] = [
    T_CREDS,
    T_PIDS,
    T_AUXGROUPS,
    T_TID_COMM,
    T_PID_COMM,
    T_EXE,
    T_CMDLINE,
    T_CGROUP,
    T_CAPS,
    T_SECLABEL,
    T_AUDIT,
    T_OWNED_NAME,
    T_DESCRIPTION,
    T_TIMESTAMP,
];

const OVERFLOW_ID: u64 = 65534;
const UNSET: u64 = 0xffff_ffff;
const SENDER_DESC: &str = "meta_sender";

/// The item type of attach bit `bit`.
fn item_of(bit: u64) -> u64 {
    0x1000 + bit.trailing_zeros() as u64
}

fn is_meta(ty: u64) -> bool {
    (0x1000..=0x100d).contains(&ty)
}

/// What the calling process really is, as /proc and the syscalls say.
#[derive(Debug, Clone)]
struct Me {
    creds: [u64; 8],
    pids: [u64; 3],
    groups: Vec<u64>,
    tid_comm: Vec<u8>,
    pid_comm: Vec<u8>,
    exe: Vec<u8>,
    cmdline: Vec<u8>,
    cgroup: Vec<u8>,
    caps: Vec<u32>,
    audit: [u32; 2],
}

fn read(path: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("read {path}: {e}"))
}

fn status_field(status: &str, key: &str) -> Result<Vec<String>, String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .map(|v| v.split_whitespace().map(str::to_owned).collect())
        .ok_or_else(|| format!("/proc/self/status has no {key}"))
}

fn trim_nl(mut v: Vec<u8>) -> Vec<u8> {
    while v.last() == Some(&b'\n') {
        v.pop();
    }
    v
}

/// The default cgroup hierarchy shows in /proc/self/cgroup only once
/// cgroup2 was mounted somewhere: mount it (as root) if it was not.
fn cgroup2_visible() -> Result<Option<PathBuf>, String> {
    let has_line = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .any(|l| l.starts_with("0::"))
    };
    let mnt = PathBuf::from("/tmp/kdbus-meta-cgroup2");
    if has_line(&read("/proc/self/cgroup")?) {
        return Ok(mnt.join("cgroup.procs").exists().then_some(mnt));
    }
    let _ = std::fs::create_dir(&mnt);
    nix::mount::mount(
        Some("cgroup2"),
        &mnt,
        Some("cgroup2"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mount cgroup2: {e}"))?;
    Ok(Some(mnt))
}

fn me() -> Result<Me, String> {
    let status = String::from_utf8_lossy(&read("/proc/self/status")?).to_string();
    let num = |s: &String| {
        s.parse::<u64>()
            .map_err(|e| format!("status value {s}: {e}"))
    };
    let uid = status_field(&status, "Uid:")?;
    let gid = status_field(&status, "Gid:")?;
    ensure!(
        uid.len() == 4 && gid.len() == 4,
        "Uid:/Gid: lines: {uid:?} {gid:?}"
    );
    let mut creds = [0u64; 8];
    for (i, v) in uid.iter().chain(gid.iter()).enumerate() {
        creds[i] = num(v)?;
    }
    // Cross-check with the syscalls.
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: plain syscalls writing into the three locals.
    unsafe { libc::getresuid(&mut r, &mut e, &mut s) };
    ensure_eq!(
        [r, e, s].map(u64::from),
        [creds[0], creds[1], creds[2]],
        "getresuid vs status"
    );
    // SAFETY: as above.
    unsafe { libc::getresgid(&mut r, &mut e, &mut s) };
    ensure_eq!(
        [r, e, s].map(u64::from),
        [creds[4], creds[5], creds[6]],
        "getresgid vs status"
    );
    let mut groups = Vec::new();
    for g in status_field(&status, "Groups:")? {
        groups.push(num(&g)?);
    }
    let mut sys_groups = vec![0 as libc::gid_t; 256];
    // SAFETY: the buffer holds 256 entries.
    let n = unsafe { libc::getgroups(256, sys_groups.as_mut_ptr()) };
    ensure!(n >= 0, "getgroups failed");
    sys_groups.truncate(n as usize);
    let mut sys_sorted: Vec<u64> = sys_groups.iter().map(|&g| g as u64).collect();
    sys_sorted.sort();
    let mut status_sorted = groups.clone();
    status_sorted.sort();
    ensure_eq!(status_sorted, sys_sorted, "getgroups vs status");
    // SAFETY: plain syscalls.
    let (pid, tid, ppid) = unsafe { (libc::getpid(), libc::gettid(), libc::getppid()) };
    let hex = |k: &str| -> Result<u64, String> {
        let v = status_field(&status, k)?;
        u64::from_str_radix(v.first().map_or("", |s| s.as_str()), 16)
            .map_err(|e| format!("{k} {v:?}: {e}"))
    };
    let last_cap: u32 = String::from_utf8_lossy(&read("/proc/sys/kernel/cap_last_cap")?)
        .trim()
        .parse()
        .map_err(|e| format!("cap_last_cap: {e}"))?;
    let mut caps = vec![last_cap];
    for k in ["CapInh:", "CapPrm:", "CapEff:", "CapBnd:"] {
        let v = hex(k)?;
        caps.push(v as u32);
        caps.push((v >> 32) as u32);
    }
    // capget agrees with status.
    let mut hdr = libc_cap_header {
        version: 0x2008_0522,
        pid: 0,
    };
    let mut data = [libc_cap_data::default(); 2];
    // SAFETY: capget with a v3 header and two data words.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    ensure!(r == 0, "capget failed");
    ensure_eq!(
        [data[0].effective, data[1].effective],
        [caps[5], caps[6]],
        "capget effective vs status"
    );
    let cgroup_file = String::from_utf8_lossy(&read("/proc/self/cgroup")?).to_string();
    let cgroup = cgroup_file
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .ok_or_else(|| format!("/proc/self/cgroup has no default hierarchy line: {cgroup_file:?}"))?
        .as_bytes()
        .to_vec();
    let exe = std::fs::read_link("/proc/self/exe")
        .map_err(|e| format!("readlink /proc/self/exe: {e}"))?;
    let loginuid: u64 = String::from_utf8_lossy(&read("/proc/self/loginuid")?)
        .trim()
        .parse()
        .map_err(|e| format!("loginuid: {e}"))?;
    let sessionid: u64 = String::from_utf8_lossy(&read("/proc/self/sessionid")?)
        .trim()
        .parse()
        .map_err(|e| format!("sessionid: {e}"))?;
    Ok(Me {
        creds,
        pids: [pid as u64, tid as u64, ppid as u64],
        groups,
        tid_comm: trim_nl(read("/proc/thread-self/comm")?),
        pid_comm: trim_nl(read("/proc/self/comm")?),
        exe: exe.as_os_str().as_encoded_bytes().to_vec(),
        cmdline: read("/proc/self/cmdline")?,
        cgroup,
        caps,
        audit: [sessionid as u32, loginuid as u32],
    })
}

#[repr(C)]
struct libc_cap_header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct libc_cap_data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

fn u64s(p: &[u8]) -> Vec<u64> {
    p.chunks_exact(8)
        .map(|c| u64::from_ne_bytes(c.try_into().unwrap_or([0; 8])))
        .collect()
}

fn u32s(p: &[u8]) -> Vec<u32> {
    p.chunks_exact(4)
        .map(|c| u32::from_ne_bytes(c.try_into().unwrap_or([0; 4])))
        .collect()
}

fn cstr(s: &[u8]) -> Vec<u8> {
    let mut v = s.to_vec();
    v.push(0);
    v
}

/// The metadata items (type, payload) of an item list.
type Meta = Vec<(u64, Vec<u8>)>;

fn meta_of<'a>(items: impl Iterator<Item = (u64, &'a [u8])>) -> Meta {
    items
        .filter(|(t, _)| is_meta(*t))
        .map(|(t, p)| (t, p.to_vec()))
        .collect()
}

fn types(m: &Meta) -> Vec<u64> {
    m.iter().map(|(t, _)| *t).collect()
}

fn get(m: &Meta, ty: u64) -> Option<&[u8]> {
    m.iter().find(|(t, _)| *t == ty).map(|(_, p)| p.as_slice())
}

/// Items are in the fixed order, each at most once (OWNED_NAME repeatable).
fn check_order(m: &Meta, what: &str) -> TestResult {
    let mut prev: Option<usize> = None;
    for (t, _) in m {
        let rank = ORDER
            .iter()
            .position(|o| o == t)
            .ok_or_else(|| format!("{what}: unknown metadata item {t:#x}"))?;
        let ok = match prev {
            None => true,
            Some(p) => rank > p || (rank == p && *t == T_OWNED_NAME),
        };
        ensure!(ok, "{what}: items out of order: {:x?}", types(m));
        prev = Some(rank);
    }
    Ok(())
}

/// Checks the values of the process items present in `m` against `me`.
fn check_values(m: &Meta, me: &Me, what: &str) -> TestResult {
    for (t, p) in m {
        match *t {
            T_CREDS => ensure_eq!(u64s(p), me.creds.to_vec(), "{what}: CREDS"),
            T_PIDS => ensure_eq!(u64s(p), me.pids.to_vec(), "{what}: PIDS"),
            T_AUXGROUPS => ensure_eq!(u64s(p), me.groups.clone(), "{what}: AUXGROUPS"),
            T_TID_COMM => ensure_eq!(p.clone(), cstr(&me.tid_comm), "{what}: TID_COMM"),
            T_PID_COMM => ensure_eq!(p.clone(), cstr(&me.pid_comm), "{what}: PID_COMM"),
            T_EXE => ensure_eq!(p.clone(), cstr(&me.exe), "{what}: EXE"),
            T_CMDLINE => ensure_eq!(
                p.clone(),
                me.cmdline.clone(),
                "{what}: CMDLINE (whole block)"
            ),
            T_CGROUP => ensure_eq!(p.clone(), cstr(&me.cgroup), "{what}: CGROUP"),
            T_CAPS => ensure_eq!(u32s(p), me.caps.clone(), "{what}: CAPS"),
            T_AUDIT => ensure_eq!(u32s(p), me.audit.to_vec(), "{what}: AUDIT"),
            T_DESCRIPTION => {
                ensure_eq!(
                    p.clone(),
                    cstr(SENDER_DESC.as_bytes()),
                    "{what}: CONN_DESCRIPTION"
                )
            }
            T_TIMESTAMP => ensure_eq!(p.len(), 24, "{what}: TIMESTAMP size"),
            T_OWNED_NAME => ensure!(p.len() > 9, "{what}: OWNED_NAME too short"),
            T_SECLABEL => ensure!(p.last() == Some(&0), "{what}: SECLABEL not NUL-terminated"),
            _ => {}
        }
    }
    Ok(())
}

/// Every padding byte after an item in `[64, size)`, and up to
/// `ALIGN8(size)`, is zero.
fn check_padding(slice: &[u8], items: &[kdbus::Item<'_>], what: &str) -> TestResult {
    for i in items {
        let end = i.offset + i.size as usize;
        let pad = slice
            .get(end..align8(end))
            .ok_or_else(|| format!("{what}: item at {} beyond the slice", i.offset))?;
        ensure!(
            pad.iter().all(|&b| b == 0),
            "{what}: non-zero padding after item {:#x} at {}",
            i.ty,
            i.offset
        );
    }
    Ok(())
}

/// Connects a sender with a description and `send` mask that owns one
/// name.
fn sender(ctx: &Ctx, send: u64) -> Result<Connection, String> {
    let mut cmd = Connection::hello_cmd(0, send, 0, POOL_SIZE);
    cmd.push_str(item_desc(), SENDER_DESC);
    let fd = expect_ok("open endpoint", kdbus::open_endpoint(ctx.endpoint()))?;
    expect_ok("HELLO of the sender", Connection::from_hello(fd, &mut cmd))
}

fn item_desc() -> u64 {
    T_DESCRIPTION
}

/// Sends one message from `s` to `r` and returns the metadata `r` got
/// (after checking order, padding and the message size).
fn exchange(s: &Connection, r: &Connection, cookie: u64, what: &str) -> Result<Meta, String> {
    util::send(s, &util::msg(r.id(), cookie, b"meta"), what)?;
    let rx = util::recv(r, what)?;
    let m = util::parse(&rx, what)?;
    check_padding(m.slice, &m.items, what)?;
    let last = m.items.last().map_or(64, |i| i.offset as u64 + i.size);
    ensure_eq!(m.size, last, "{what}: kdbus_msg.size vs the last item");
    let meta = meta_of(m.items.iter().map(|i| (i.ty, i.payload)));
    check_order(&meta, what)?;
    expect_ok(&format!("{what}: FREE"), r.free(rx.info().offset))?;
    Ok(meta)
}

/// Each attach bit alone, on a message, against the sender's /proc.
pub fn each_item(ctx: &Ctx) -> TestResult {
    if ctx.euid == 0 {
        cgroup2_visible()?;
    }
    let s = sender(ctx, 0)?;
    let name = format!("org.kdbus.meta{}", std::process::id());
    expect_ok("NAME_ACQUIRE", s.name_acquire(&name, 0))?;
    let me = me()?;
    for n in 0..14 {
        let bit = 1u64 << n;
        let r = util::hello(ctx, 0, bit)?;
        let what = format!("receiver mask {bit:#x}");
        let m = exchange(&s, &r, n + 1, &what)?;
        let want = match bit {
            A_SECLABEL => vec![], // no LSM in the test kernel
            _ => vec![item_of(bit)],
        };
        ensure_eq!(types(&m), want, "{what}: items");
        check_values(&m, &me, &what)?;
        if bit == A_NAMES {
            let p = get(&m, T_OWNED_NAME).unwrap_or(&[]);
            ensure_eq!(
                p.get(8..).map(|s| s.to_vec()),
                Some(cstr(name.as_bytes())),
                "{what}: name"
            );
        }
    }
    Ok(())
}

/// All bits together: the fixed order, every value.
pub fn all_items(ctx: &Ctx) -> TestResult {
    // In a cgroup of its own, so that CGROUP is not just "/".
    if ctx.euid == 0 {
        if let Some(mnt) = cgroup2_visible()? {
            let cg = mnt.join(format!("kdbus-meta-{}", std::process::id()));
            let _ = std::fs::create_dir(&cg);
            std::fs::write(cg.join("cgroup.procs"), "0")
                .map_err(|e| format!("move into {}: {e}", cg.display()))?;
        }
    }
    let s = sender(ctx, 0)?;
    let name = format!("org.kdbus.meta{}", std::process::id());
    expect_ok("NAME_ACQUIRE", s.name_acquire(&name, 0))?;
    let r = util::hello(ctx, 0, ATTACH_ALL)?;
    let me = me()?;
    let m = exchange(&s, &r, 1, "all items")?;
    let want: Vec<u64> = ORDER.iter().copied().filter(|&t| t != T_SECLABEL).collect();
    ensure_eq!(types(&m), want, "all items: types in order");
    check_values(&m, &me, "all items")?;
    // A monitor gets the same process values (collected once per message).
    Ok(())
}

/// The sender's metadata cache (kdbus/metadata/cache.rs) never serves a
/// stale item: between messages from one connection the sender changes its
/// comm, its argument block, its egid, the name of its executable (the
/// file is renamed, the process stays the same) and, as root with cgroup2,
/// its cgroup; every message carries what the sender is when it sends,
/// checked against /proc each time.
pub fn cache_follows_changes(ctx: &Ctx) -> TestResult {
    if ctx.euid == 0 {
        cgroup2_visible()?;
    }
    let s = sender(ctx, 0)?;
    let r = util::hello(ctx, 0, ATTACH_ALL)?;
    let mut cookie = 0;
    let mut check = |what: &str| -> TestResult {
        cookie += 1;
        let m = exchange(&s, &r, cookie, what)?;
        // Twice: the second message is the one the cache serves.
        cookie += 1;
        let again = exchange(&s, &r, cookie, what)?;
        let me = me()?;
        check_values(&m, &me, what)?;
        check_values(&again, &me, &format!("{what} (again)"))
    };
    check("before any change")?;

    // comm (prctl PR_SET_NAME: this thread's).
    let name = c"kdbus-renamed";
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_NAME, name.as_ptr()) };
    ensure!(rc == 0, "prctl(PR_SET_NAME) failed");
    check("after PR_SET_NAME")?;

    // The argument block, written in place (as setproctitle does).
    let stat = String::from_utf8_lossy(&read("/proc/self/stat")?).to_string();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    // Fields 48 and 49 of stat(5) (arg_start, arg_end); `fields` starts at 3.
    let arg = |n: usize| fields.get(n - 3).and_then(|v| v.parse::<usize>().ok());
    let (Some(start), Some(end)) = (arg(48), arg(49)) else {
        return Err(format!("no arg_start/arg_end in /proc/self/stat: {stat}"));
    };
    ensure!(end > start, "empty argument block {start:#x}..{end:#x}");
    let first = start as *mut u8;
    // SAFETY: [arg_start, arg_end) is this process's own argument block on
    // its stack (what /proc/self/cmdline reads); one byte is changed and
    // put back, and this forked test child reads argv nowhere else.
    let was = unsafe { first.read_volatile() };
    // SAFETY: as above.
    unsafe { first.write_volatile(if was == b'K' { b'Q' } else { b'K' }) };
    let r1 = check("after writing argv[0]");
    // SAFETY: as above.
    unsafe { first.write_volatile(was) };
    r1?;
    check("after restoring argv[0]")?;

    if ctx.euid != 0 {
        return Ok(());
    }
    // Credentials: a new egid (setresgid on this thread only, raw).
    // SAFETY: plain syscalls.
    let rc = unsafe { libc::syscall(libc::SYS_setresgid, -1i32, 4321, -1i32) };
    ensure!(rc == 0, "setresgid failed");
    let r1 = check("after setresgid");
    // SAFETY: plain syscall.
    unsafe { libc::syscall(libc::SYS_setresgid, -1i32, 0, -1i32) };
    r1?;

    // The executable renamed under the running process.
    let exe = std::fs::read_link("/proc/self/exe").map_err(|e| format!("readlink exe: {e}"))?;
    let moved = exe.with_file_name(format!("kdbus-meta-exe-{}", std::process::id()));
    std::fs::rename(&exe, &moved).map_err(|e| format!("rename {}: {e}", exe.display()))?;
    let r1 = check("after renaming the executable");
    std::fs::rename(&moved, &exe).map_err(|e| format!("rename back {}: {e}", exe.display()))?;
    r1?;
    check("after renaming it back")?;

    // The executable unlinked (it stays as a second link): its name gains
    // " (deleted)" with no rename anywhere. The link is renamed back over
    // the old name for later tests; this forked child keeps the unlinked
    // one.
    let link = exe.with_file_name(format!("kdbus-meta-link-{}", std::process::id()));
    std::fs::hard_link(&exe, &link).map_err(|e| format!("link {}: {e}", exe.display()))?;
    let r1 = std::fs::remove_file(&exe)
        .map_err(|e| format!("unlink {}: {e}", exe.display()))
        .and_then(|()| check("after unlinking the executable"));
    std::fs::rename(&link, &exe).map_err(|e| format!("rename back {}: {e}", link.display()))?;
    r1?;

    // Another cgroup, a second one, and back to the first (cgroup2
    // directories cannot be renamed: the kernel refuses, so a cgroup's
    // path only changes with the cgroup).
    let Some(mnt) = cgroup2_visible()? else {
        return Ok(());
    };
    let a = mnt.join(format!("kdbus-meta-cache-{}-a", std::process::id()));
    let b = mnt.join(format!("kdbus-meta-cache-{}-b", std::process::id()));
    for (cg, what) in [
        (&a, "after moving into a cgroup"),
        (&b, "after moving into another cgroup"),
        (&a, "after moving back"),
    ] {
        let _ = std::fs::create_dir(cg);
        std::fs::write(cg.join("cgroup.procs"), "0")
            .map_err(|e| format!("move into {}: {e}", cg.display()))?;
        check(what)?;
    }
    let renamed = mnt.join(format!("kdbus-meta-cache-{}-c", std::process::id()));
    ensure!(
        std::fs::rename(&a, &renamed).is_err(),
        "cgroup2 allowed renaming {}: the CGROUP cache assumes it cannot",
        a.display()
    );
    Ok(())
}

/// PIDS after the sender's parent exits: the sender (a grandchild) is
/// reparented to this test, a child subreaper, and its messages give the
/// new parent though nothing else about it changed (the cache compares the
/// parent as well as the sender).
pub fn cache_follows_reparent(ctx: &Ctx) -> TestResult {
    use nix::unistd::{fork, read, write, ForkResult};
    // SAFETY: plain prctl on this forked test process.
    let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    ensure!(rc == 0, "PR_SET_CHILD_SUBREAPER failed");
    let (go_rd, go_wr) = expect_ok("pipe", nix::unistd::pipe())?;
    let (out_rd, out_wr) = expect_ok("pipe", nix::unistd::pipe())?;
    // SAFETY: the test process is single-threaded.
    let middle = match unsafe { fork() } {
        Err(e) => return Err(format!("fork: {e}")),
        Ok(ForkResult::Parent { child }) => child,
        Ok(ForkResult::Child) => {
            drop(out_rd);
            // SAFETY: single-threaded, as above.
            match unsafe { fork() } {
                Ok(ForkResult::Child) => {
                    drop(go_rd);
                    let out = match reparented_sender(ctx, &go_wr) {
                        Ok(()) => "O".to_string(),
                        Err(e) => format!("E{e}"),
                    };
                    let _ = write(&out_wr, out.as_bytes());
                }
                _ => {
                    // Exits when the sender says so (or is gone).
                    drop(go_wr);
                    let _ = read(&go_rd, &mut [0u8; 1]);
                }
            }
            // SAFETY: leave the child without running destructors.
            unsafe { libc::_exit(0) }
        }
    };
    drop((go_rd, go_wr, out_wr));
    let _ = nix::sys::wait::waitpid(middle, None);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match read(&out_rd, &mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(format!("read from the sender: {e}")),
        }
    }
    // The sender, now a child of this process.
    let _ = nix::sys::wait::waitpid(None, None);
    let s = String::from_utf8_lossy(&out).to_string();
    match s.split_at_checked(1) {
        Some(("O", _)) => Ok(()),
        Some(("E", e)) => Err(format!("sender: {e}")),
        _ => Err(format!("the sender reported nothing ({s:?})")),
    }
}

/// The grandchild of [`cache_follows_reparent`]: two messages, its parent
/// told to exit through `go`, two more once reparented.
fn reparented_sender(ctx: &Ctx, go: &std::os::fd::OwnedFd) -> TestResult {
    let s = sender(ctx, 0)?;
    let r = util::hello(ctx, 0, ATTACH_ALL)?;
    let check = |cookie: u64, what: &str| -> TestResult {
        let m = exchange(&s, &r, cookie, what)?;
        check_values(&m, &me()?, what)
    };
    check(1, "before the parent exits")?;
    check(2, "before the parent exits (again)")?;
    let parent = nix::unistd::getppid();
    expect_ok("tell the parent to exit", nix::unistd::write(go, b"x"))?;
    let mut waited = 0;
    while nix::unistd::getppid() == parent {
        ensure!(waited < 1000, "still not reparented after 10 s");
        std::thread::sleep(std::time::Duration::from_millis(10));
        waited += 1;
    }
    check(3, "after reparenting")?;
    check(4, "after reparenting (again)")
}

/// Values are collected once per message: a monitor and the receiver see
/// the same metadata bytes (apart from nothing: even the TIMESTAMP).
pub fn once_per_message(ctx: &Ctx) -> TestResult {
    let mon = expect_ok(
        "HELLO of a monitor",
        Connection::hello(ctx.endpoint(), HELLO_MONITOR, 0, ATTACH_ALL, POOL_SIZE),
    )?;
    let s = sender(ctx, 0)?;
    let r = util::hello(ctx, 0, ATTACH_ALL)?;
    let got = exchange(&s, &r, 7, "receiver")?;
    // Skip the ID_ADD notifications of the two HELLOs.
    let seen = loop {
        let rx = util::recv(&mon, "monitor")?;
        let m = util::parse(&rx, "monitor")?;
        if m.src_id == s.id() {
            break meta_of(m.items.iter().map(|i| (i.ty, i.payload)));
        }
        expect_ok("FREE", mon.free(rx.info().offset))?;
    };
    ensure_eq!(seen, got, "monitor vs receiver metadata");
    Ok(())
}

/// The receiver's mask selects (nothing for 0, UPDATE applies to later
/// messages); implicit items come whatever the sender's mask; /proc items
/// come to a receiver that can see the sender whatever the sender's mask.
pub fn receiver_mask(ctx: &Ctx) -> TestResult {
    let s = sender(ctx, 0)?;
    let r = util::hello(ctx, 0, 0)?;
    let m = exchange(&s, &r, 1, "receiver mask 0")?;
    ensure!(m.is_empty(), "receiver mask 0 got {:x?}", types(&m));
    expect_ok(
        "UPDATE recv CREDS|PIDS",
        r.update(None, Some(A_CREDS | A_PIDS)),
    )?;
    let m = exchange(&s, &r, 2, "receiver mask CREDS|PIDS")?;
    ensure_eq!(types(&m), vec![T_CREDS, T_PIDS], "after UPDATE");
    expect_ok("UPDATE recv PROC_ITEMS", r.update(None, Some(PROC_ITEMS)))?;
    let m = exchange(&s, &r, 3, "receiver mask of /proc items")?;
    let want = [
        T_TID_COMM, T_PID_COMM, T_EXE, T_CMDLINE, T_CGROUP, T_CAPS, T_AUDIT,
    ];
    ensure_eq!(types(&m), want.to_vec(), "visible sender, send mask 0");
    Ok(())
}

/// A message's process metadata is the sending thread's at SEND; the
/// connection snapshot (CONN_INFO) is the HELLO task's and is never
/// updated.
pub fn conn_info(ctx: &Ctx) -> TestResult {
    if ctx.euid == 0 {
        cgroup2_visible()?;
    }
    let a = util::hello(ctx, 0, ATTACH_ALL)?;
    let me0 = me()?;
    let t = sender(ctx, ATTACH_ALL)?;
    let what = "CONN_INFO with ATTACH_ALL";
    let r = expect_ok(what, a.conn_info(t.id(), ATTACH_ALL))?;
    let recs = expect_ok(what, a.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    ensure_eq!(recs.len(), 1, "{what}: records");
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    check_order(&m, what)?;
    let want: Vec<u64> = ORDER
        .iter()
        .copied()
        .filter(|&t| t != T_SECLABEL && t != T_OWNED_NAME && t != T_TIMESTAMP)
        .collect();
    ensure_eq!(types(&m), want, "{what}: items");
    check_values(&m, &me0, what)?;
    expect_ok("FREE", a.free(r.offset))?;
    // Rename the thread: messages show the new name, CONN_INFO the old.
    let new_name = c"meta-renamed";
    // SAFETY: PR_SET_NAME with a NUL-terminated string.
    unsafe { libc::prctl(libc::PR_SET_NAME, new_name.as_ptr()) };
    let me1 = me()?;
    ensure_eq!(
        me1.tid_comm.clone(),
        b"meta-renamed".to_vec(),
        "renamed comm"
    );
    let r = expect_ok(what, a.conn_info(t.id(), ATTACH_ALL))?;
    let recs = expect_ok(what, a.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    check_values(&m, &me0, "CONN_INFO after a rename (the HELLO snapshot)")?;
    expect_ok("FREE", a.free(r.offset))?;
    let m = exchange(&t, &a, 1, "message after a rename")?;
    check_values(&m, &me1, "message after a rename (the sending thread)")?;
    // The target's send mask limits CONN_INFO; no implicit items.
    let t2 = expect_ok(
        "HELLO with send mask CREDS",
        Connection::hello(ctx.endpoint(), 0, A_CREDS, 0, POOL_SIZE),
    )?;
    let r = expect_ok(
        "CONN_INFO of a CREDS-only target",
        a.conn_info(t2.id(), ATTACH_ALL),
    )?;
    let recs = expect_ok("records", a.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    ensure_eq!(types(&m), vec![T_CREDS], "CONN_INFO of a CREDS-only target");
    expect_ok("FREE", a.free(r.offset))?;
    let r = expect_ok("CONN_INFO asking PIDS", a.conn_info(t.id(), A_PIDS))?;
    let recs = expect_ok("records", a.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    ensure_eq!(types(&m), vec![T_PIDS], "CONN_INFO asking PIDS only");
    check_values(&m, &me0, "CONN_INFO asking PIDS only")?;
    expect_ok("FREE", a.free(r.offset))?;
    Ok(())
}

/// BUS_CREATOR_INFO: MAKE_NAME, then the creator's snapshot as far as the
/// bus's owner mask allows.
pub fn bus_creator_info(ctx: &Ctx) -> TestResult {
    if ctx.euid == 0 {
        cgroup2_visible()?;
    }
    let me = me()?;
    for (mask, ask) in [
        (ATTACH_ALL, ATTACH_ALL),
        (A_PIDS, ATTACH_ALL),
        (ATTACH_ALL, A_CREDS),
    ] {
        let what = format!("BUS_CREATOR_INFO, owner mask {mask:#x}, asking {ask:#x}");
        let bus = ctx.make_bus(BusMaker::new(ctx.unique_name()).attach_flags_send(mask))?;
        let c = expect_ok(
            "HELLO",
            Connection::hello(bus.endpoint(), 0, 0, 0, POOL_SIZE),
        )?;
        let r = expect_ok(&what, c.bus_creator_info(ask))?;
        let recs = expect_ok(&what, c.info_records(&r).map_err(|_| Errno::EBADMSG))?;
        ensure_eq!(recs.len(), 1, "{what}: records");
        ensure_eq!(
            recs[0].items.first().map(|i| i.ty),
            Some(uapi::KDBUS_ITEM_MAKE_NAME as u64),
            "{what}: first item"
        );
        let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
        check_order(&m, &what)?;
        let granted = mask & ask & PROCESS;
        let want: Vec<u64> = ORDER
            .iter()
            .copied()
            .filter(|&t| t != T_SECLABEL && granted & (1 << (t - 0x1000)) != 0)
            .collect();
        ensure_eq!(types(&m), want, "{what}: items");
        check_values(&m, &me, &what)?;
        expect_ok("FREE", c.free(r.offset))?;
    }
    Ok(())
}

fn faked_hello(
    ctx: &Ctx,
    creds: Option<[u64; 8]>,
    pids: Option<[u64; 3]>,
    label: Option<&str>,
) -> Result<Connection, Errno> {
    let mut cmd = Connection::hello_cmd(0, ATTACH_ALL, 0, POOL_SIZE);
    if let Some(c) = creds {
        cmd.push_u64s(T_CREDS, &c);
    }
    if let Some(p) = pids {
        cmd.push_u64s(T_PIDS, &p);
    }
    if let Some(l) = label {
        cmd.push_str(T_SECLABEL, l);
    }
    cmd.push_str(T_DESCRIPTION, SENDER_DESC);
    let fd = kdbus::open_endpoint(ctx.endpoint())?;
    Connection::from_hello(fd, &mut cmd)
}

/// Faked CREDS/PIDS/SECLABEL of an owner: reported by CONN_INFO as given
/// (unset ids as 0xffffffff, no AUXGROUPS or CAPS), no process metadata on
/// its messages, unmappable ids and unknown pids refused.
pub fn faked(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    // SAFETY: plain syscalls.
    let (pid, tid) = unsafe { (libc::getpid() as u64, libc::gettid() as u64) };
    let creds = [1000, 1001, UNSET, 1003, 2000, 2001, 2002, UNSET];
    let f = expect_ok(
        "HELLO with faked CREDS, PIDS, SECLABEL",
        faked_hello(ctx, Some(creds), Some([pid, tid, 0]), Some("faked_label")),
    )?;
    let a = util::hello(ctx, 0, ATTACH_ALL)?;
    let r = expect_ok(
        "CONN_INFO of the faked connection",
        a.conn_info(f.id(), ATTACH_ALL),
    )?;
    let recs = expect_ok("records", a.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    ensure_eq!(
        types(&m),
        vec![T_CREDS, T_PIDS, T_SECLABEL, T_DESCRIPTION],
        "CONN_INFO of a faked connection"
    );
    ensure_eq!(
        u64s(get(&m, T_CREDS).unwrap_or(&[])),
        creds.to_vec(),
        "faked CREDS"
    );
    ensure_eq!(
        u64s(get(&m, T_PIDS).unwrap_or(&[])),
        vec![pid, tid, 0],
        "faked PIDS"
    );
    ensure_eq!(
        get(&m, T_SECLABEL).map(|p| p.to_vec()),
        Some(cstr(b"faked_label")),
        "faked SECLABEL"
    );
    expect_ok("FREE", a.free(r.offset))?;
    // Its messages carry no process metadata at all.
    let m = exchange(&f, &a, 1, "message from a faked connection")?;
    ensure_eq!(
        types(&m),
        vec![T_DESCRIPTION, T_TIMESTAMP],
        "message from a faked connection"
    );
    // Only PIDS faked: CONN_INFO has PIDS only (no real CREDS either).
    let p = expect_ok(
        "HELLO with faked PIDS only",
        faked_hello(ctx, None, Some([pid, 0, 0]), None),
    )?;
    let r = expect_ok("CONN_INFO", a.conn_info(p.id(), ATTACH_ALL))?;
    let recs = expect_ok("records", a.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    ensure_eq!(types(&m), vec![T_PIDS, T_DESCRIPTION], "faked PIDS only");
    expect_ok("FREE", a.free(r.offset))?;
    // Refused: an id that cannot be mapped, a pid that does not exist.
    let mut bad = creds;
    bad[2] = u64::MAX;
    expect_errno(
        "faked CREDS with ~0",
        faked_hello(ctx, Some(bad), None, None).map(|_| ()),
        Errno::EINVAL,
    )?;
    expect_errno(
        "faked PIDS of a pid that does not exist",
        faked_hello(ctx, None, Some([0x3fff_fff0, 0, 0]), None).map(|_| ()),
        Errno::EINVAL,
    )?;
    expect_errno(
        "faked PIDS beyond pid_t",
        faked_hello(ctx, None, Some([1 << 40, 0, 0]), None).map(|_| ()),
        Errno::EINVAL,
    )?;
    Ok(())
}

fn write_file(path: &str, s: &str) -> TestResult {
    std::fs::write(path, s).map_err(|e| format!("write {path}: {e}"))
}

/// Translation into a child user and pid namespace, and a kdbusfs mounted
/// inside the user namespace.
///
/// The test process T (root) has a connection S on a world-accessible bus.
/// A child C unshares user, mount and pid namespaces (T maps root there to
/// host uid/gid 1000); its child G (pid 1 of the new pid namespace)
/// connects to the same bus. G receives from S: CREDS are the overflow id,
/// PIDS 0, /proc items only as S's send mask allows, no EXE (another
/// root), CAPS unchanged (G's namespace descends from S's). S receives
/// from G: CREDS 1000, G's host pids, CAPS zero. Then G mounts kdbusfs,
/// makes a bus there and checks its own metadata in its own namespaces.
pub fn user_pid_namespace(ctx: &Ctx) -> TestResult {
    require_root(ctx)?;
    if !Path::new("/proc/self/ns/user").exists() {
        return skip("no user namespaces");
    }
    cgroup2_visible()?;
    let bus = ctx.new_bus(uapi::KDBUS_MAKE_ACCESS_WORLD as u64)?;
    let s = expect_ok(
        "HELLO of the host connection",
        Connection::hello(bus.endpoint(), 0, 0, ATTACH_ALL, POOL_SIZE),
    )?;
    let me_t = me()?;
    let (up, down) = (Chan::new()?, Chan::new()?);
    let endpoint = bus.endpoint();
    let dir = std::env::temp_dir().join(format!("kdbus-meta-{}", ctx.unique_name()));
    expect_ok("mkdir", std::fs::create_dir(&dir).map_err(|_| Errno::EIO))?;
    let s_id = s.id();
    let fstype = ctx.fstype.clone();
    let dir_copy: PathBuf = dir.clone();
    let child = ChildProc::spawn(|| {
        // C: report our (host) pid, unshare, wait for the id maps.
        // SAFETY: plain syscalls.
        up.put(unsafe { libc::getpid() } as u64)?;
        let flags = libc::CLONE_NEWUSER | libc::CLONE_NEWNS | libc::CLONE_NEWPID;
        // SAFETY: unshare of namespaces in a single-threaded process.
        ensure!(
            unsafe { libc::unshare(flags) } == 0,
            "unshare: {}",
            Errno::last()
        );
        up.put(1)?;
        down.get(10_000, "id maps written")?;
        super::sys::become_user(0, 0)?;
        let g =
            ChildProc::spawn(|| in_namespaces(&endpoint, s_id, &me_t, &dir, &fstype, &up, &down))?;
        g.wait(60_000, "the process in the new namespaces")
    })?;
    let c_pid = up.get(10_000, "the child's pid")?;
    up.get(10_000, "unshare done")?;
    write_file(&format!("/proc/{c_pid}/uid_map"), "0 1000 1\n")?;
    write_file(&format!("/proc/{c_pid}/gid_map"), "0 1000 1\n")?;
    down.put(1)?;
    let g_id = up.get(20_000, "the namespaced connection's id")?;
    // 1. S (send mask 0) to G: G cannot see S in its pid namespace.
    util::send(&s, &util::msg(g_id, 1, b"to G"), "send mask 0 to G")?;
    // 2. the same with send mask ALL.
    expect_ok("UPDATE send ALL", s.update(Some(ATTACH_ALL), None))?;
    util::send(
        &s,
        &util::call(g_id, 2, 60_000),
        "send mask ALL to G (a call)",
    )?;
    down.put(2)?;
    // 3. G to S.
    let host = (|| -> TestResult {
        ensure!(util::wait_readable(&s, 20_000), "nothing from G");
        let rx = util::recv(&s, "from G")?;
        let m = util::parse(&rx, "from G")?;
        let meta = meta_of(m.items.iter().map(|i| (i.ty, i.payload)));
        check_order(&meta, "from G")?;
        ensure_eq!(
            u64s(get(&meta, T_CREDS).unwrap_or(&[])),
            vec![1000; 8],
            "G's CREDS seen by the host (message from {} with {:x?})",
            m.src_id,
            types(&meta)
        );
        let pids = u64s(get(&meta, T_PIDS).unwrap_or(&[]));
        ensure!(
            pids.len() == 3 && pids[0] > 1 && pids[1] == pids[0] && pids[2] == c_pid,
            "G's PIDS seen by the host: {pids:?} (its parent is {c_pid})"
        );
        let caps = u32s(get(&meta, T_CAPS).unwrap_or(&[]));
        ensure!(
            caps.len() == 9 && caps[1..].iter().all(|&w| w == 0),
            "G's CAPS seen by the host (a namespace that is not the host's ancestor): {caps:?}"
        );
        ensure!(
            get(&meta, T_EXE).is_none(),
            "EXE of a task with another root"
        );
        for t in [T_TID_COMM, T_PID_COMM, T_CMDLINE, T_CGROUP, T_AUDIT] {
            ensure!(
                get(&meta, t).is_some(),
                "item {t:#x} missing from G's message"
            );
        }
        Ok(())
    })();
    let r = child.wait(60_000, "the namespaced child");
    let _ = std::fs::remove_dir(&dir_copy);
    match (host, r) {
        (Ok(()), r) => r,
        (Err(h), Ok(())) => Err(h),
        (Err(h), Err(c)) => Err(format!("{h}; in the namespaces: {c}")),
    }
}
/// G: in the new user, mount and pid namespaces, uid 0 = host 1000.
fn in_namespaces(
    endpoint: &Path,
    s_id: u64,
    me_t: &Me,
    dir: &Path,
    fstype: &str,
    up: &Chan,
    down: &Chan,
) -> TestResult {
    // SAFETY: plain syscalls.
    ensure_eq!(
        unsafe { libc::getpid() },
        1,
        "G's pid in the new pid namespace"
    );
    let g = expect_ok(
        "HELLO from the new namespaces",
        Connection::hello(endpoint, 0, ATTACH_ALL, ATTACH_ALL, POOL_SIZE),
    )?;
    up.put(g.id())?;
    down.get(20_000, "the host's messages")?;
    for (cookie, proc_items) in [(1u64, false), (2, true)] {
        let what = format!("host message {cookie} in the namespaces");
        let rx = util::recv(&g, &what)?;
        let m = util::parse(&rx, &what)?;
        ensure_eq!(m.cookie, cookie, "{what}: cookie");
        let meta = meta_of(m.items.iter().map(|i| (i.ty, i.payload)));
        check_order(&meta, &what)?;
        ensure_eq!(
            u64s(get(&meta, T_CREDS).unwrap_or(&[])),
            vec![OVERFLOW_ID; 8],
            "{what}: host root's CREDS (unmapped)"
        );
        ensure_eq!(
            u64s(get(&meta, T_PIDS).unwrap_or(&[])),
            vec![0; 3],
            "{what}: host PIDS (invisible)"
        );
        let groups = u64s(get(&meta, T_AUXGROUPS).unwrap_or(&[]));
        ensure!(
            groups.iter().all(|&g| g == OVERFLOW_ID) && groups.len() == me_t.groups.len(),
            "{what}: host AUXGROUPS {groups:?}"
        );
        let want_proc: Vec<u64> = if proc_items {
            vec![T_TID_COMM, T_PID_COMM, T_CMDLINE, T_CGROUP, T_CAPS, T_AUDIT]
        } else {
            vec![]
        };
        let got_proc: Vec<u64> = types(&meta)
            .into_iter()
            .filter(|&t| PROC_ITEMS & (1 << (t - 0x1000)) != 0)
            .collect();
        ensure_eq!(
            got_proc,
            want_proc,
            "{what}: /proc items (no EXE: another root)"
        );
        if proc_items {
            ensure_eq!(
                u32s(get(&meta, T_CAPS).unwrap_or(&[])),
                me_t.caps.clone(),
                "{what}: CAPS of the host root (ours descends from its namespace)"
            );
            let audit = u32s(get(&meta, T_AUDIT).unwrap_or(&[]));
            ensure!(
                audit.len() == 2 && audit[0] == me_t.audit[0] && audit[1] as u64 == UNSET,
                "{what}: AUDIT of the host (its loginuid is unmapped or unset here): {audit:?}"
            );
        }
        expect_ok("FREE", g.free(rx.info().offset))?;
    }
    // A reply: G may not TALK to the host's root otherwise.
    util::send(&g, &util::reply(s_id, 2, 3), "G's reply to the host")?;
    // A kdbusfs of our own.
    let me_g = me()?;
    ensure_eq!(me_g.creds.to_vec(), vec![0; 8], "G's ids in its namespace");
    nix::mount::mount(
        Some(fstype),
        dir,
        Some(fstype),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .map_err(|e| format!("mount {fstype} in a user namespace: {e}"))?;
    let control = expect_ok("open control", Control::open(dir))?;
    let name = "0-meta";
    let bus = expect_ok(
        "BUS_MAKE in the user namespace's kdbusfs",
        BusMaker::new(name)
            .attach_flags_send(ATTACH_ALL)
            .make(control),
    )?;
    let a = expect_ok(
        "HELLO A",
        Connection::hello(bus.endpoint(), 0, ATTACH_ALL, ATTACH_ALL, POOL_SIZE),
    )?;
    let b = expect_ok(
        "HELLO B",
        Connection::hello(bus.endpoint(), 0, ATTACH_ALL, ATTACH_ALL, POOL_SIZE),
    )?;
    let mut me_want = me_g.clone();
    me_want.pids[2] = 0; // our parent is not in our pid namespace
    ensure_eq!(me_want.pids[..2].to_vec(), vec![1, 1], "G's pid and tid");
    let m = exchange(&a, &b, 1, "inside the namespaces")?;
    ensure!(
        [T_CREDS, T_PIDS, T_EXE, T_CAPS]
            .iter()
            .all(|t| get(&m, *t).is_some()),
        "inside the namespaces: items {:x?}",
        types(&m)
    );
    check_values(&m, &me_want, "inside the namespaces")?;
    let r = expect_ok("CONN_INFO inside", b.conn_info(a.id(), ATTACH_ALL))?;
    let recs = expect_ok("records", b.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    check_values(&m, &me_want, "CONN_INFO inside the namespaces")?;
    let r = expect_ok("BUS_CREATOR_INFO inside", b.bus_creator_info(ATTACH_ALL))?;
    let recs = expect_ok("records", b.info_records(&r).map_err(|_| Errno::EBADMSG))?;
    let m = meta_of(recs[0].items.iter().map(|i| (i.ty, i.payload.as_slice())));
    check_values(&m, &me_want, "BUS_CREATOR_INFO inside the namespaces")?;
    drop((a, b, bus));
    let _ = nix::mount::umount2(dir, nix::mount::MntFlags::MNT_DETACH);
    drop(g);
    Ok(())
}
