// SPDX-License-Identifier: GPL-2.0

//! Information commands answered in the caller's pool (spec: connection.md
//! 6, names.md 8): CONN_INFO, BUS_CREATOR_INFO and LIST, as `kdbus_info`
//! records.

use crate::connection::Connection;
use crate::glue::gfp;
use crate::message::push_item;
use crate::proto::cmd::{self, Cmd};
use crate::proto::errno::{Result, EINVAL, ENXIO, ESRCH};
use crate::proto::item;
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

impl Connection {
    /// KDBUS_CMD_CONN_INFO (connection.md 6.1).
    pub(crate) fn conn_info(&self, c: &Cmd<'_>) -> Result<(u64, u64)> {
        let attach = cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_info, attach_flags)))?;
        let id = c.field(offset_of!(kdbus_cmd_info, id));
        if c.item(KDBUS_ITEM_NAME).is_some() {
            // No name registry yet: no name exists.
            return Err(ESRCH);
        }
        if id == 0 {
            return Err(EINVAL);
        }
        let target = self.ep.bus.find_conn(id).ok_or(ENXIO)?;
        let granted = attach & target.attach_send();
        let desc = match target.description() {
            Some(d) if granted & KDBUS_ATTACH_CONN_DESCRIPTION != 0 => Some([d, &[0u8][..]]),
            _ => None,
        };
        let mut items: KVec<(u32, &[&[u8]])> = KVec::new();
        if let Some(d) = &desc {
            items.push((KDBUS_ITEM_CONN_DESCRIPTION, &d[..]), gfp())?;
        }
        let rec = info_record(target.id, target.flags, &items)?;
        self.pool.publish_result(&rec)
    }

    /// KDBUS_CMD_BUS_CREATOR_INFO (connection.md 6.2).
    pub(crate) fn bus_creator_info(&self, c: &Cmd<'_>) -> Result<(u64, u64)> {
        cmd::sanitize_attach(c.field(offset_of!(kdbus_cmd_info, attach_flags)))?;
        let bus = &self.ep.bus;
        let name: [&[u8]; 2] = [bus.name(), &[0]];
        let rec = info_record(bus.id, bus.flags, &[(KDBUS_ITEM_MAKE_NAME, &name)])?;
        self.pool.publish_result(&rec)
    }

    /// KDBUS_CMD_LIST (names.md 8); names come with the name registry.
    pub(crate) fn list(&self, flags: u64) -> Result<(u64, u64)> {
        let mut out = KVVec::new();
        if flags & KDBUS_LIST_UNIQUE as u64 != 0 {
            let mut next = 0;
            while let Some(c) = self.ep.bus.conn_after(next) {
                next = c.id;
                if !c.is_monitor() {
                    out.extend_from_slice(&info_record(c.id, c.flags, &[])?, gfp())?;
                }
            }
        }
        if out.is_empty() {
            return Ok((self.pool.size(), 0));
        }
        self.pool.publish_result(&out)
    }
}
