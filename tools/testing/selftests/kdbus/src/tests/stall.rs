//! A SEND stalled by userspace must not stall the bus teardown: the
//! sender's memory (a PAYLOAD_VEC, the `kdbus_msg`, or the
//! `kdbus_cmd_send` itself) lies in a userfaultfd-registered region whose
//! page is missing, so the kernel's copy from user memory blocks until the
//! test resolves the fault. Meanwhile the bus owner (another process)
//! closes its handle: the close must return within a few seconds and the
//! bus directory must go. Once the fault is resolved the stalled SEND
//! fails with ECONNRESET and nothing was delivered.

use std::sync::mpsc;
use std::time::Duration;

use kdbus::{uapi, CmdBuf, Errno, MsgBuilder};

use super::sys::{self, KmsgWatch, OwnerProc, Uffd};
use super::util::{self, msg};
use crate::check::{diag, expect_errno, TestResult};
use crate::ctx::{require_root, Ctx};
use crate::ensure;

/// Which part of the SEND lives in the missing page.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The data of a PAYLOAD_VEC.
    Payload,
    /// The `kdbus_msg`.
    Msg,
    /// The `kdbus_cmd_send`.
    Cmd,
}

fn stall(ctx: &Ctx, place: Place) -> TestResult {
    require_root(ctx)?;
    let watch = KmsgWatch::start()?;
    let bus = ctx.new_bus(0)?;
    let dir = bus.dir();
    let ep = bus.endpoint();
    let owner = OwnerProc::spawn(bus)?;
    let r = ctx.hello_on(&ep)?;
    let s = ctx.hello_on(&ep)?;
    let uffd = Uffd::new(2)?;
    let region = uffd.addr();
    let page = kdbus::page_size();
    let m = match place {
        Place::Payload => MsgBuilder::new(r.id())
            .cookie(1)
            .vec_raw(page as u64, region as u64),
        _ => msg(r.id(), 1, b"stalled"),
    };
    let mut msg_copy = m.cmd().clone();
    let msg_addr = match place {
        Place::Msg => region as u64,
        _ => msg_copy.as_mut_ptr() as u64,
    };
    let mut cmd = CmdBuf::send(0, msg_addr);
    let cmd_addr = match place {
        Place::Cmd => region,
        _ => cmd.as_mut_ptr() as usize,
    };
    // What the missing page receives when the fault is resolved.
    let content: Vec<u8> = match place {
        Place::Payload => Vec::new(),
        Place::Msg => msg_copy.as_bytes().to_vec(),
        Place::Cmd => cmd.as_bytes().to_vec(),
    };
    let mut ordered = false;
    let mut close_hung = false;
    let (res, sent) = std::thread::scope(|sc| {
        let (tx, rx) = mpsc::channel();
        let sender = &s;
        sc.spawn(move || {
            // SAFETY: `cmd_addr` is the command (in the test's memory or
            // in the registered region, which stays mapped until the SEND
            // returns); the message and payload it names stay alive too.
            let r = unsafe {
                kdbus::ioctl_ptr(sender, uapi::KDBUS_CMD_SEND, cmd_addr as *mut libc::c_void)
            };
            let _ = tx.send(r);
        });
        let res = (|| -> TestResult {
            match uffd.wait_fault(5000)? {
                None => {
                    return Err(
                        "the SEND did not fault on the userfaultfd region within 5 s".into(),
                    )
                }
                Some(a) => ensure!(
                    (region as u64..(region + 2 * page) as u64).contains(&a),
                    "fault at {a:#x}, outside the region at {region:#x}"
                ),
            }
            std::thread::sleep(Duration::from_millis(50));
            util::expect_empty(&r, "receiver while the SEND is stalled")?;
            ordered = true;
            match owner.close_bus(5000)? {
                Some(ms) => diag(format!("bus owner close() took {ms} ms")),
                None => {
                    close_hung = true;
                    return Err(
                        "the bus owner's close() (bus teardown) did not return within 5 s while a SEND is stalled in a userfaultfd fault"
                            .into(),
                    );
                }
            }
            ensure!(
                sys::wait_absent(&dir, 2000),
                "bus directory {} still exists after the owner's close",
                dir.display()
            );
            Ok(())
        })();
        let resolved = match place {
            Place::Payload => uffd.zeropage(0),
            _ => uffd.copy(0, &content),
        };
        if !ordered {
            let _ = owner.close_bus(10_000);
        }
        let sent = rx.recv_timeout(Duration::from_secs(10));
        if close_hung {
            match owner.wait_closed(10_000) {
                Some(ms) => diag(format!("the hung close() returned {ms} ms after it started, once the fault was resolved")),
                None => diag("the hung close() did not return within 10 s of resolving the fault"),
            }
        }
        if res.is_err() {
            diag(format!(
                "the stalled SEND after resolving the fault: {sent:?}"
            ));
        }
        (res.and(resolved), sent)
    });
    res?;
    match sent {
        Ok(r) => expect_errno(
            "the stalled SEND after the bus teardown",
            r,
            Errno::ECONNRESET,
        )?,
        Err(_) => {
            return Err("the stalled SEND did not return within 10 s of resolving the fault".into())
        }
    }
    expect_errno(
        "RECV at the receiver after the teardown (nothing was delivered)",
        r.recv(0, 0).map(drop),
        Errno::ECONNRESET,
    )?;
    drop((r, s, m, msg_copy, cmd));
    owner.finish(10_000)?;
    watch.check("stalled SEND")
}

/// The PAYLOAD_VEC data is in the missing page.
pub fn uffd_payload(ctx: &Ctx) -> TestResult {
    stall(ctx, Place::Payload)
}

/// The `kdbus_msg` is in the missing page.
pub fn uffd_msg(ctx: &Ctx) -> TestResult {
    stall(ctx, Place::Msg)
}

/// The `kdbus_cmd_send` is in the missing page.
pub fn uffd_cmd(ctx: &Ctx) -> TestResult {
    stall(ctx, Place::Cmd)
}
