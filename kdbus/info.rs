// SPDX-License-Identifier: GPL-2.0

//! Information commands answered in the caller's pool (spec: connection.md
//! 6, names.md 8): CONN_INFO, BUS_CREATOR_INFO and LIST, as `kdbus_info`
//! records.

use crate::connection::Connection;
use crate::glue::cred::Credential;
use crate::glue::gfp;
use crate::message::push_item;
use crate::proto::cmd::{self, Cmd};
use crate::proto::errno::{Result, EINVAL, ENXIO, ESRCH, EXFULL};
use crate::proto::item;
use crate::proto::metadata::{self as pm, Values};
use crate::uapi::*;
use core::mem::{offset_of, size_of};
use kernel::prelude::*;

/// Builds a `kdbus_info` record with `items` ((type, payload parts)).
fn info_record(id: u64, flags: u64, items: &[(u32, &[&[u8]])]) -> Result<KVec<u8>> {
    let mut out = KVec::new();
    out.extend_with(size_of::<kdbus_info>(), 0, gfp())?;
    for (ty, parts) in items {
        push_item(&mut out, *ty, parts)?;
    }
    let size = out.len() as u64;
    item::write_u64(&mut out, offset_of!(kdbus_info, size), size);
    item::write_u64(&mut out, offset_of!(kdbus_info, id), id);
    item::write_u64(&mut out, offset_of!(kdbus_info, flags), flags);
    Ok(out)
}

/// An empty `kdbus_info` header, items to follow.
fn info_header() -> Result<KVec<u8>> {
    let mut out = KVec::new();
    out.extend_with(size_of::<kdbus_info>(), 0, gfp())?;
    Ok(out)
}

/// Fills in the header of the record `out` (`size` including the padding
/// of its last item).
fn finish_info(out: &mut [u8], id: u64, flags: u64) {
    let size = out.len() as u64;
    item::write_u64(out, offset_of!(kdbus_info, size), size);
    item::write_u64(out, offset_of!(kdbus_info, id), id);
    item::write_u64(out, offset_of!(kdbus_info, flags), flags);
}

impl Connection {
    /// KDBUS_CMD_CONN_INFO (connection.md 6.1), by a task with `cred`.
    pub(crate) fn conn_info(&self, cred: &Credential, c: &Cmd<'_>) -> Result<(u64, u64)> {
        let attach = cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_info, attach_flags)))?;
        let id = c.field(offset_of!(kdbus_cmd_info, id));
        let bus = &self.ep.bus;
        let target = if let Some(n) = c.item(KDBUS_ITEM_NAME) {
            let owner = bus.name_owner(n.str_bytes()).ok_or(ESRCH)?;
            if id != 0 && id != owner || !self.may_see_name(cred, n.str_bytes()) {
                return Err(ESRCH);
            }
            bus.find_conn(owner).ok_or(ESRCH)?
        } else {
            if id == 0 {
                return Err(EINVAL);
            }
            let t = bus.find_conn(id).ok_or(ENXIO)?;
            if !self.may_see_conn(cred, &t) {
                return Err(ENXIO);
            }
            t
        };
        let granted = pm::conn_info_mask(attach, target.attach_send());
        let mut names = KVVec::new();
        if granted & KDBUS_ATTACH_NAMES != 0 {
            for (f, n) in bus.owned_names(&target)?.iter() {
                pm::put_owned_name(&mut names, *f, &n.name)?;
            }
        }
        let extra = Values {
            names: &names,
            description: target.description(),
            ..Values::default()
        };
        let mut rec = info_header()?;
        target.meta.render(
            granted,
            self.cred.user_ns(),
            &self.consumer,
            &extra,
            &mut rec,
        )?;
        finish_info(&mut rec, target.id, target.flags);
        self.pool.publish_result(&rec)
    }

    /// KDBUS_CMD_BUS_CREATOR_INFO (connection.md 6.2): the bus name, then the
    /// creator's metadata the bus lets connections see.
    pub(crate) fn bus_creator_info(&self, c: &Cmd<'_>) -> Result<(u64, u64)> {
        let attach = cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_info, attach_flags)))?;
        let bus = &self.ep.bus;
        let granted = pm::bus_creator_mask(attach, bus.attach_owner);
        let mut rec = info_header()?;
        pm::put_item(&mut rec, KDBUS_ITEM_MAKE_NAME, &[bus.name(), &[0]])?;
        let extra = Values::default();
        bus.creator.render(
            granted,
            self.cred.user_ns(),
            &self.consumer,
            &extra,
            &mut rec,
        )?;
        finish_info(&mut rec, bus.id, bus.flags);
        self.pool.publish_result(&rec)
    }

    /// KDBUS_CMD_LIST (names.md 8): for each connection but monitors, its
    /// name records of the requested kinds, or a bare record if it had none
    /// of them and UNIQUE is asked for. The result is bounded by the pool:
    /// beyond its size it could not be placed anyway (`EXFULL`).
    pub(crate) fn list(&self, cred: &Credential, flags: u64) -> Result<(u64, u64)> {
        let want = |f: u32| flags & f as u64 != 0;
        let (names, activators, queued) = (
            want(KDBUS_LIST_NAMES),
            want(KDBUS_LIST_ACTIVATORS),
            want(KDBUS_LIST_QUEUED),
        );
        let limit = self.pool.size() as usize;
        let mut out = KVVec::new();
        let mut next = 0;
        while let Some(c) = self.ep.bus.conn_after(next) {
            next = c.id;
            if c.is_monitor() {
                continue;
            }
            let mut listed = false;
            if names || activators || queued {
                self.ep.bus.with_records(&c, |rf, name| {
                    let consider = if rf & KDBUS_NAME_ACTIVATOR as u64 != 0 {
                        activators
                    } else if rf & KDBUS_NAME_IN_QUEUE as u64 != 0 {
                        queued
                    } else {
                        names
                    };
                    if !consider {
                        return Ok(());
                    }
                    listed = true;
                    if !self.may_see_name(cred, name) {
                        return Ok(());
                    }
                    let f = rf.to_ne_bytes();
                    let rec =
                        info_record(c.id, c.flags, &[(KDBUS_ITEM_OWNED_NAME, &[&f, name, &[0]])])?;
                    if out.len() + rec.len() > limit {
                        return Err(EXFULL);
                    }
                    Ok(out.extend_from_slice(&rec, gfp())?)
                })?;
            }
            if !listed && want(KDBUS_LIST_UNIQUE) {
                let rec = info_record(c.id, c.flags, &[])?;
                if out.len() + rec.len() > limit {
                    return Err(EXFULL);
                }
                out.extend_from_slice(&rec, gfp())?;
            }
        }
        if out.is_empty() {
            return Ok((self.pool.size(), 0));
        }
        self.pool.publish_result(&out)
    }
}
