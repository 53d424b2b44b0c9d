//! mmap of the receive pool (spec pool.md 3).

use std::os::fd::AsFd;

use kdbus::{open_endpoint, Errno, ItemIter, MapFlags, Mmap, ProtFlags};

use super::item;
use crate::check::{diag, errno_name, expect_errno, expect_ok, TestResult};
use crate::ctx::{Ctx, POOL_SIZE};
use crate::{ensure, ensure_eq};

fn map(
    fd: impl AsFd,
    len: usize,
    prot: ProtFlags,
    flags: MapFlags,
    offset: i64,
) -> Result<Mmap, Errno> {
    Mmap::map(fd, len, prot, flags, offset)
}

/// A read-only shared mapping shows the HELLO slice; so does a partial
/// mapping at a page-aligned offset.
pub fn readonly(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let h = *c.hello_reply();
    let pool = POOL_SIZE as usize;
    let off = h.offset as usize;
    let m = expect_ok(
        "mmap PROT_READ MAP_SHARED of the whole pool",
        Mmap::map_readonly(&c, pool),
    )?;
    let want = c
        .pool_bytes(h.offset, 32)
        .ok_or("HELLO slice outside the library's mapping")?;
    let got = m
        .bytes(off, 32)
        .ok_or("HELLO slice outside the second mapping")?;
    ensure_eq!(got, want, "HELLO slice through a second mapping");
    let items = ItemIter::new(got)
        .collect_items()
        .map_err(|e| format!("HELLO slice through the second mapping: {e}"))?;
    ensure_eq!(items.len(), 1, "items in the HELLO slice");
    ensure_eq!(
        items[0].ty,
        item::BLOOM_PARAMETER,
        "item type in the HELLO slice"
    );
    ensure_eq!(
        items[0].as_bloom_parameter(),
        Some((64, 8)),
        "bloom parameters"
    );

    let page = kdbus::page_size();
    let start = off / page * page;
    let len = (2 * page).min(pool - start);
    let part = expect_ok(
        &format!("mmap of {len} bytes at pool offset {start:#x}"),
        map(
            &c,
            len,
            ProtFlags::PROT_READ,
            MapFlags::MAP_SHARED,
            start as i64,
        ),
    )?;
    let got = part
        .bytes(off - start, 32)
        .ok_or("HELLO slice outside the partial mapping")?;
    ensure_eq!(got, want, "HELLO slice through a partial mapping");
    let private = expect_ok(
        "mmap PROT_READ MAP_PRIVATE",
        map(&c, pool, ProtFlags::PROT_READ, MapFlags::MAP_PRIVATE, 0),
    )?;
    ensure_eq!(
        private.bytes(off, 32),
        Some(want),
        "HELLO slice through a private mapping"
    );
    Ok(())
}

/// Writable mappings: EPERM.
pub fn write_denied(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let pool = POOL_SIZE as usize;
    let rw = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    let cases = [
        (rw, MapFlags::MAP_SHARED, "PROT_READ|PROT_WRITE, MAP_SHARED"),
        (
            ProtFlags::PROT_WRITE,
            MapFlags::MAP_SHARED,
            "PROT_WRITE, MAP_SHARED",
        ),
        (
            rw,
            MapFlags::MAP_PRIVATE,
            "PROT_READ|PROT_WRITE, MAP_PRIVATE",
        ),
    ];
    for (prot, flags, what) in cases {
        expect_errno(
            &format!("mmap {what}"),
            map(&c, pool, prot, flags, 0),
            Errno::EPERM,
        )?;
    }
    expect_ok(
        "read-only mmap after the refused ones",
        Mmap::map_readonly(&c, pool),
    )?;
    Ok(())
}

/// A read-only pool mapping cannot be made writable with mprotect.
pub fn mprotect_write(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let h = *c.hello_reply();
    for flags in [MapFlags::MAP_SHARED, MapFlags::MAP_PRIVATE] {
        let mut m = expect_ok(
            "read-only mmap",
            map(&c, POOL_SIZE as usize, ProtFlags::PROT_READ, flags, 0),
        )?;
        // SAFETY: no slice of `m` is alive; on success the test fails anyway.
        let r = unsafe { m.protect(ProtFlags::PROT_READ | ProtFlags::PROT_WRITE) };
        match r {
            Ok(()) => {
                return Err(format!(
                    "mprotect(PROT_READ|PROT_WRITE) of the pool mapping ({flags:?}) succeeded"
                ))
            }
            Err(e) => diag(format!(
                "mprotect to writable ({flags:?}) refused with {}",
                errno_name(e)
            )),
        }
        let want = c
            .pool_bytes(h.offset, 32)
            .ok_or("HELLO slice not readable")?;
        ensure_eq!(
            m.bytes(h.offset as usize, 32),
            Some(want),
            "pool still readable after the refused mprotect"
        );
    }
    Ok(())
}

/// A mapping longer than the pool: EFAULT.
pub fn too_long(ctx: &Ctx) -> TestResult {
    let c = ctx.hello()?;
    let page = kdbus::page_size();
    let pool = POOL_SIZE as usize;
    for len in [pool + page, 2 * pool, 16 * pool] {
        expect_errno(
            &format!("mmap of {len:#x} bytes of a {pool:#x}-byte pool"),
            Mmap::map_readonly(&c, len),
            Errno::EFAULT,
        )?;
    }
    let m = expect_ok(
        "mmap of exactly pool_size bytes",
        Mmap::map_readonly(&c, pool),
    )?;
    ensure_eq!(m.len(), pool, "mapping length");
    Ok(())
}

/// mmap on anything but a connected handle: EBADFD.
pub fn unset_handle(ctx: &Ctx) -> TestResult {
    let page = kdbus::page_size();
    let ep = expect_ok("open endpoint", open_endpoint(ctx.endpoint()))?;
    expect_errno(
        "mmap of an unset endpoint handle",
        Mmap::map_readonly(&ep, page),
        Errno::EBADFD,
    )?;
    let control = ctx.control()?;
    expect_errno(
        "mmap of an unset control handle",
        Mmap::map_readonly(&control, page),
        Errno::EBADFD,
    )?;
    expect_errno(
        "mmap of the bus-owner handle",
        Mmap::map_readonly(&ctx.bus, page),
        Errno::EBADFD,
    )?;
    let c = ctx.hello()?;
    let m = expect_ok("mmap of a connected handle", Mmap::map_readonly(&c, page))?;
    ensure!(m.len() == page, "mapping length");
    Ok(())
}

/// Partial mappings at a non-zero page-aligned offset: any length up to
/// pool_size is allowed, also when offset + length passes the end of the
/// pool; only a length above pool_size is EFAULT (pool.md 3). The part
/// inside the pool shows the pool's content.
pub fn offset(ctx: &Ctx) -> TestResult {
    let a = ctx.hello()?;
    let c = super::util::hello_clean(ctx, 0, 0, POOL_SIZE)?;
    let page = kdbus::page_size();
    let pool = POOL_SIZE as usize;
    // Non-zero content across several pages.
    super::util::send(
        &a,
        &super::util::msg(c.id(), 1, &vec![0x5a; 3 * page]),
        "SEND of a 3-page message",
    )?;
    let r = super::util::recv(&c, "the 3-page message")?;
    let first_page = (r.offset() as usize / page + 1) * page;
    for (off, len) in [
        (first_page, pool - first_page),
        (first_page, pool),
        (first_page, pool - page),
        (pool - page, 2 * page),
        (pool / 2, pool),
        (pool, page),
    ] {
        let m = expect_ok(
            &format!("mmap of {len:#x} bytes at pool offset {off:#x} (pool {pool:#x})"),
            map(
                &c,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                off as i64,
            ),
        )?;
        ensure_eq!(m.len(), len, "mapping length");
        let inside = pool.saturating_sub(off).min(len).min(page);
        if inside > 0 {
            let want = c
                .pool_bytes(off as u64, inside as u64)
                .ok_or("range outside the library's mapping")?;
            ensure_eq!(
                m.bytes(0, inside),
                Some(want),
                "pool bytes at {off:#x} through a mapping at that offset"
            );
        }
    }
    let want = c
        .pool_bytes(first_page as u64, 16)
        .ok_or("range outside the library's mapping")?;
    ensure_eq!(want, &[0x5a; 16][..], "message data at {first_page:#x}");
    for (off, len) in [(page, pool + page), (pool, 2 * pool)] {
        expect_errno(
            &format!("mmap of {len:#x} bytes at pool offset {off:#x} (longer than the pool)"),
            map(
                &c,
                len,
                ProtFlags::PROT_READ,
                MapFlags::MAP_SHARED,
                off as i64,
            ),
            Errno::EFAULT,
        )?;
    }
    expect_ok("FREE", r.free())?;
    Ok(())
}
