//! The receive pool with messages: slice allocation (best fit, split,
//! merge), publication and FREE, pool-full (pool.md 2, 4, 5; message.md
//! 7.3).

use kdbus::consts::*;
use kdbus::{Connection, Errno, MsgBuilder};

use super::util::{self, msg_with_slice, send};
use crate::check::{expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::ensure_eq;

/// Sends a message whose slice at `b` is `slice` bytes and receives it;
/// returns its offset (not freed).
fn place(a: &Connection, b: &Connection, slice: usize, cookie: u64) -> Result<u64, String> {
    let m = if slice == 64 {
        MsgBuilder::new(b.id()).cookie(cookie)
    } else {
        msg_with_slice(b.id(), cookie, slice)
    };
    send(a, &m, &format!("SEND of a {slice}-byte message"))?;
    let r = util::recv(b, "placed message")?;
    ensure_eq!(
        r.info().msg_size,
        slice as u64,
        "slice size of message {cookie}"
    );
    ensure_eq!(util::parse(&r, "placed message")?.cookie, cookie, "cookie");
    Ok(r.offset())
}

/// FREE rules on message slices: unknown, inside-slice and past-the-pool
/// offsets ENXIO; a queued but unpublished slice ENXIO; `pool_size` a
/// no-op; double FREE ENXIO.
pub fn free_rules(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello_clean(ctx, 0, 0, POOL_SIZE)?;
    send(&a, &msg_with_slice(b.id(), 1, 256), "SEND")?;
    // In an otherwise empty pool the slice starts at 0 (best fit, pool.md
    // 2), but it is not published yet.
    expect_errno(
        "FREE of a queued, unpublished slice",
        b.free(0),
        Errno::ENXIO,
    )?;
    let r = util::recv(&b, "message")?;
    ensure_eq!(r.offset(), 0, "offset of the first slice of an empty pool");
    expect_errno("FREE inside the slice", b.free(8), Errno::ENXIO)?;
    expect_errno("FREE at the slice's end", b.free(256), Errno::ENXIO)?;
    expect_errno("FREE past the pool", b.free(POOL_SIZE + 8), Errno::ENXIO)?;
    expect_errno("FREE of u64::MAX", b.free(u64::MAX), Errno::ENXIO)?;
    expect_ok("FREE of pool_size", b.free(POOL_SIZE))?;
    expect_ok("FREE of the slice", r.free())?;
    expect_errno("double FREE", r.free(), Errno::ENXIO)?;
    expect_errno("FREE of an unaligned offset", b.free(3), Errno::ENXIO)
}

/// From an empty pool, slices are handed out back to back from offset 0,
/// each of the rounded request size.
pub fn sequential(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello_clean(ctx, 0, 0, POOL_SIZE)?;
    let sizes = [64usize, 104, 200, 1024, 64, 4096];
    let mut want = 0u64;
    for (i, s) in sizes.iter().enumerate() {
        let off = place(&a, &b, *s, i as u64 + 1)?;
        ensure_eq!(off, want, "offset of slice {} ({s} bytes)", i + 1);
        want += *s as u64;
    }
    Ok(())
}

/// A freed slice is reused: the next allocation of an emptied pool starts
/// at offset 0 again.
pub fn reuse(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello_clean(ctx, 0, 0, POOL_SIZE)?;
    for i in 1..=5u64 {
        let off = place(&a, &b, 512, i)?;
        ensure_eq!(
            off,
            0,
            "offset of message {i} after freeing the previous one"
        );
        expect_ok("FREE", b.free(off))?;
    }
    Ok(())
}

/// Best fit: the smallest free slice that fits is used from its start, the
/// remainder split off; freed neighbours merge (pool.md 2).
pub fn best_fit(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let b = util::hello_clean(ctx, 0, 0, POOL_SIZE)?;
    let m1 = place(&a, &b, 64, 1)?;
    let m2 = place(&a, &b, 128, 2)?;
    let m3 = place(&a, &b, 64, 3)?;
    let m4 = place(&a, &b, 64, 4)?;
    ensure_eq!((m1, m2, m3, m4), (0, 64, 192, 256), "initial offsets");
    expect_ok("FREE m2", b.free(m2))?;
    // Free: [64, 192) of 128 bytes and the tail from 320.
    let m5 = place(&a, &b, 64, 5)?;
    ensure_eq!(m5, 64, "64 bytes go into the 128-byte hole, not the tail");
    let m6 = place(&a, &b, 64, 6)?;
    ensure_eq!(m6, 128, "the hole's 64-byte remainder is used next");
    let m7 = place(&a, &b, 64, 7)?;
    ensure_eq!(m7, 320, "with the hole full, the tail");
    // Free [0,64), [64,128), [128,192): they merge into one 192-byte slice.
    for o in [m1, m6, m5] {
        expect_ok("FREE", b.free(o))?;
    }
    let m8 = place(&a, &b, 192, 8)?;
    ensure_eq!(m8, 0, "192 bytes fit the merged hole exactly");
    let m9 = place(&a, &b, 200, 9)?;
    ensure_eq!(m9, 384, "200 bytes go to the tail");
    // Free m3 and m4 and m7: [192, 384) merges with nothing busy around;
    // a 192-byte request takes it, exact fit before the tail.
    for o in [m3, m4, m7] {
        expect_ok("FREE", b.free(o))?;
    }
    let m10 = place(&a, &b, 192, 10)?;
    ensure_eq!(m10, 192, "exact fit in the merged middle hole");
    Ok(())
}

/// A pool filled with received but unfreed slices: SEND fails with EXFULL
/// (quota is not involved), as do CONN_INFO, BUS_CREATOR_INFO and LIST;
/// freeing one slice makes room exactly there.
pub fn full(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let pool = 16 * 1024;
    let b = util::hello_clean(ctx, 0, 0, pool)?;
    let mut offs = Vec::new();
    for i in 0..16u64 {
        offs.push(place(&a, &b, 1024, i + 1)?);
    }
    ensure_eq!(
        offs,
        (0..16).map(|i| i * 1024).collect::<Vec<u64>>(),
        "offsets of 16 KiB in 1 KiB slices"
    );
    util::send_err(
        &a,
        &msg_with_slice(b.id(), 99, 1024),
        Errno::EXFULL,
        "SEND into a full pool",
    )?;
    util::send_err(
        &a,
        &MsgBuilder::new(b.id()),
        Errno::EXFULL,
        "64-byte SEND into a full pool",
    )?;
    util::expect_empty(&b, "nothing queued after EXFULL")?;
    expect_errno(
        "CONN_INFO into a full pool",
        b.conn_info(a.id(), 0),
        Errno::EXFULL,
    )?;
    expect_errno(
        "BUS_CREATOR_INFO into a full pool",
        b.bus_creator_info(0),
        Errno::EXFULL,
    )?;
    expect_errno("LIST into a full pool", b.list(LIST_UNIQUE), Errno::EXFULL)?;
    expect_ok("FREE of the slice at 5 KiB", b.free(5 * 1024))?;
    let off = place(&a, &b, 1024, 100)?;
    ensure_eq!(off, 5 * 1024, "the only free slice is reused");
    util::send_err(
        &a,
        &MsgBuilder::new(b.id()),
        Errno::EXFULL,
        "SEND into the full pool again",
    )?;
    expect_ok("FREE of the slice at 0", b.free(0))?;
    let info = expect_ok("CONN_INFO after a FREE", b.conn_info(a.id(), 0))?;
    ensure_eq!(info.offset, 0, "CONN_INFO result placed in the freed slice");
    expect_ok("FREE of the CONN_INFO result", b.free(info.offset))?;
    // The sender is unaffected by the receiver's full pool.
    let c = ctx.hello()?;
    send(
        &a,
        &MsgBuilder::new(c.id()).cookie(5),
        "SEND to another receiver",
    )?;
    let r = util::recv(&c, "other receiver")?;
    expect_ok("FREE", r.free())
}
