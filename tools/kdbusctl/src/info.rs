//! `list` and `status`: LIST, CONN_INFO and BUS_CREATOR_INFO.

use std::collections::BTreeMap;

use kdbus::consts::*;
use kdbus::{InfoRecord, PoolResult};
use kdbus_client::metadata::{attach, Metadata};
use kdbus_client::Connection;
use serde_json::{json, Value as Json};

use crate::cli::{JsonMode, ListArgs};
use crate::error::{usage, CtlError, Result};
use crate::format::{json_text, table};

/// Capability names by number (capability(7)).
pub const CAP_NAMES: [&str; 41] = [
    "cap_chown",
    "cap_dac_override",
    "cap_dac_read_search",
    "cap_fowner",
    "cap_fsetid",
    "cap_kill",
    "cap_setgid",
    "cap_setuid",
    "cap_setpcap",
    "cap_linux_immutable",
    "cap_net_bind_service",
    "cap_net_broadcast",
    "cap_net_admin",
    "cap_net_raw",
    "cap_ipc_lock",
    "cap_ipc_owner",
    "cap_sys_module",
    "cap_sys_rawio",
    "cap_sys_chroot",
    "cap_sys_ptrace",
    "cap_sys_pacct",
    "cap_sys_admin",
    "cap_sys_boot",
    "cap_sys_nice",
    "cap_sys_resource",
    "cap_sys_time",
    "cap_sys_tty_config",
    "cap_mknod",
    "cap_lease",
    "cap_audit_write",
    "cap_audit_control",
    "cap_setfcap",
    "cap_mac_override",
    "cap_mac_admin",
    "cap_syslog",
    "cap_wake_alarm",
    "cap_block_suspend",
    "cap_audit_read",
    "cap_perfmon",
    "cap_bpf",
    "cap_checkpoint_restore",
];

/// The four capability sets of a CAPS item as name lists, in the item's
/// order: inheritable, permitted, effective, bounding.
pub fn cap_sets(last_cap: u32, words: &[u32]) -> [Vec<String>; 4] {
    let n = words.len() / 4;
    let mut out: [Vec<String>; 4] = Default::default();
    for (set, names) in out.iter_mut().enumerate() {
        for bit in 0..=(last_cap as usize).min(n * 32 - 1) {
            if words[set * n + bit / 32] & (1 << (bit % 32)) != 0 {
                names.push(
                    CAP_NAMES
                        .get(bit)
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| format!("cap_{bit}")),
                );
            }
        }
    }
    out
}

/// A user name from /etc/passwd, else the number.
pub fn user_name(uid: u32) -> String {
    if let Ok(p) = std::fs::read_to_string("/etc/passwd") {
        for l in p.lines() {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() > 2 && f[2] == uid.to_string() {
                return f[0].to_string();
            }
        }
    }
    uid.to_string()
}

fn records(conn: &Connection, r: PoolResult) -> Result<Vec<InfoRecord>> {
    let raw = conn.raw();
    let recs = raw.info_records(&r);
    let _ = raw.free(r.offset);
    recs.map_err(|e| CtlError::Failure(format!("malformed kernel answer: {}", e.0)))
}

/// CONN_INFO of `id` (metadata `mask`), `None` if it is gone.
fn conn_info_id(conn: &Connection, id: u64, mask: u64) -> Option<InfoRecord> {
    let r = conn.raw().conn_info(id, mask).ok()?;
    records(conn, r).ok()?.into_iter().next()
}

fn meta(rec: &InfoRecord) -> Metadata {
    Metadata::from_items(rec.items.iter().map(|i| (i.ty, &i.payload[..])))
}

/// One row of `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// The name (unique or well-known).
    pub name: String,
    /// The connection id holding it (`None` for nothing).
    pub id: Option<u64>,
    /// `unique`, `primary`, `queued`, `activatable`, `primary,activatable`.
    pub state: String,
}

/// The rows of `list` from LIST records (UNIQUE | NAMES | ACTIVATORS |
/// QUEUED): every connection except activators as its unique name (policy
/// holders included), every name with its primary owner (or
/// `(activatable)` if only an activator holds it) and one row per queued
/// owner. Unique names sort by id, the rest by name, then state.
pub fn rows(recs: &[InfoRecord]) -> Vec<Row> {
    let mut unique: BTreeMap<u64, u64> = BTreeMap::new();
    let mut names: BTreeMap<String, (Option<u64>, bool, Vec<u64>)> = BTreeMap::new();
    for r in recs {
        if r.flags & HELLO_ACTIVATOR == 0 {
            unique.insert(r.id, r.flags);
        }
        if let Ok(Some(n)) = r.owned_name() {
            let e = names.entry(n.name).or_default();
            if n.flags & NAME_ACTIVATOR != 0 {
                e.1 = true;
            } else if n.flags & NAME_IN_QUEUE != 0 {
                e.2.push(r.id);
            } else {
                e.0 = Some(r.id);
            }
        }
    }
    let mut out: Vec<Row> = unique
        .iter()
        .map(|(id, flags)| Row {
            name: format!(":1.{id}"),
            id: Some(*id),
            state: if flags & HELLO_POLICY_HOLDER != 0 {
                "policy-holder".into()
            } else {
                "unique".into()
            },
        })
        .collect();
    for (name, (primary, act, mut queued)) in names {
        let state = match (primary, act) {
            (Some(_), true) => "primary,activatable",
            (Some(_), false) => "primary",
            (None, true) => "activatable",
            (None, false) => "queued-only",
        };
        if primary.is_some() || act {
            out.push(Row {
                name: name.clone(),
                id: primary,
                state: state.into(),
            });
        }
        queued.sort_unstable();
        for q in queued {
            out.push(Row {
                name: name.clone(),
                id: Some(q),
                state: "queued".into(),
            });
        }
    }
    out
}

/// `kdbusctl list`.
pub fn list(conn: &Connection, a: &ListArgs, json: Option<JsonMode>, legend: bool) -> Result<()> {
    let flags = LIST_UNIQUE | LIST_NAMES | LIST_ACTIVATORS | LIST_QUEUED;
    let recs = conn
        .raw()
        .list_records(flags)
        .map_err(|e| CtlError::errno("LIST failed", e))?;
    let mut cache: BTreeMap<u64, Option<(Metadata, u64)>> = BTreeMap::new();
    let mask = attach::CREDS | attach::PIDS | attach::PID_COMM | attach::CONN_DESCRIPTION;
    let mut table_rows = Vec::new();
    let mut json_rows = Vec::new();
    for row in rows(&recs) {
        let is_unique = row.name.starts_with(':');
        let activatable = row.state.contains("activatable");
        if (a.unique && !is_unique) || (a.acquired && is_unique) || (a.activatable && !activatable)
        {
            continue;
        }
        let info = row.id.and_then(|id| {
            cache
                .entry(id)
                .or_insert_with(|| conn_info_id(conn, id, mask).map(|r| (meta(&r), r.flags)))
                .clone()
        });
        let m = info.as_ref().map(|(m, _)| m.clone()).unwrap_or_default();
        let pid = m.pid();
        let uid = m.euid();
        let connection = match row.id {
            Some(id) => format!(":1.{id}"),
            None => "(activatable)".into(),
        };
        let dash = |o: Option<String>| o.unwrap_or_else(|| "-".into());
        table_rows.push(vec![
            row.name.clone(),
            dash(pid.map(|p| p.to_string())),
            dash(m.pid_comm.clone()),
            dash(uid.map(user_name)),
            connection.clone(),
            row.state.clone(),
            dash(m.description.clone()),
        ]);
        json_rows.push(json!({
            "name": row.name,
            "pid": pid,
            "process": m.pid_comm,
            "user": uid.map(user_name),
            "uid": uid,
            "connection": if row.id.is_some() { Json::from(connection) } else { Json::Null },
            "state": row.state,
            "description": m.description,
        }));
    }
    match json {
        Some(mode) => println!("{}", json_text(&Json::Array(json_rows), mode)),
        None => {
            let header = [
                "NAME",
                "PID",
                "PROCESS",
                "USER",
                "CONNECTION",
                "STATE",
                "DESCRIPTION",
            ];
            print!("{}", table(legend.then_some(&header[..]), &table_rows));
        }
    }
    Ok(())
}

/// What `status` prints: (key, value) pairs in busctl's order.
pub fn status_fields(m: &Metadata) -> Vec<(&'static str, String)> {
    let mut f = Vec::new();
    let opt = |v: Option<u32>| v.map(|x| x.to_string()).unwrap_or_default();
    if let Some(p) = m.pids {
        f.push(("PID", opt(p.pid)));
        f.push(("TID", opt(p.tid)));
        f.push(("PPID", opt(p.ppid)));
    }
    if let Some(c) = m.creds {
        f.push(("UID", opt(c.uid)));
        f.push(("EUID", opt(c.euid)));
        f.push(("SUID", opt(c.suid)));
        f.push(("FSUID", opt(c.fsuid)));
        f.push(("GID", opt(c.gid)));
        f.push(("EGID", opt(c.egid)));
        f.push(("SGID", opt(c.sgid)));
        f.push(("FSGID", opt(c.fsgid)));
    }
    if let Some(g) = &m.auxgroups {
        f.push((
            "SupplementaryGIDs",
            g.iter().map(u64::to_string).collect::<Vec<_>>().join(" "),
        ));
    }
    if let Some(c) = &m.pid_comm {
        f.push(("Comm", c.clone()));
    }
    if let Some(c) = &m.tid_comm {
        f.push(("TIDComm", c.clone()));
    }
    if let Some(e) = &m.exe {
        f.push(("Exe", e.clone()));
    }
    if let Some(c) = &m.cmdline {
        f.push(("CommandLine", c.join(" ")));
    }
    if let Some(c) = &m.cgroup {
        f.push(("CGroup", c.clone()));
    }
    if let Some(d) = &m.description {
        f.push(("Description", d.clone()));
    }
    if let Some((last, words)) = &m.caps {
        if words.len() >= 4 {
            let [inh, perm, eff, bnd] = cap_sets(*last, words);
            f.push(("EffectiveCapabilities", eff.join(" ")));
            f.push(("PermittedCapabilities", perm.join(" ")));
            f.push(("InheritableCapabilities", inh.join(" ")));
            f.push(("BoundingCapabilities", bnd.join(" ")));
        }
    }
    if let Some(l) = &m.seclabel {
        f.push(("Label", l.clone()));
    }
    if let Some((session, login)) = m.audit {
        let a = |v: u32| {
            if v == u32::MAX {
                String::new()
            } else {
                v.to_string()
            }
        };
        f.push(("AuditLoginUID", a(login)));
        f.push(("AuditSessionID", a(session)));
    }
    f
}

fn hello_flags(flags: u64) -> String {
    let mut v = Vec::new();
    for (bit, n) in [
        (HELLO_ACCEPT_FD, "accept-fd"),
        (HELLO_ACTIVATOR, "activator"),
        (HELLO_POLICY_HOLDER, "policy-holder"),
        (HELLO_MONITOR, "monitor"),
    ] {
        if flags & bit != 0 {
            v.push(n);
        }
    }
    v.join(" ")
}

/// Parses a `status` argument: `:1.N` or `N` -> id, else a well-known
/// name.
pub fn peer_arg(p: &str) -> Result<(Option<u64>, Option<String>)> {
    if let Some(id) = kdbus_client::message::parse_unique_name(p) {
        return Ok((Some(id), None));
    }
    if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) {
        return p
            .parse()
            .map(|id| (Some(id), None))
            .map_err(|_| usage(format!("connection id {p} out of range")));
    }
    if kdbus::valid_name(p, false) {
        return Ok((None, Some(p.to_string())));
    }
    Err(usage(format!(
        "invalid peer '{p}': not a well-known name, a unique name (:1.N) or a connection id"
    )))
}

fn print_fields(fields: &[(&str, String)], json: Option<JsonMode>) {
    match json {
        Some(mode) => {
            let mut m = serde_json::Map::new();
            for (k, v) in fields {
                m.insert((*k).into(), Json::from(v.clone()));
            }
            println!("{}", json_text(&Json::Object(m), mode));
        }
        None => {
            for (k, v) in fields {
                println!("{k}={v}");
            }
        }
    }
}

/// `kdbusctl status [PEER]`.
pub fn status(conn: &Connection, peer: Option<&str>, json: Option<JsonMode>) -> Result<()> {
    let raw = conn.raw();
    let Some(peer) = peer else {
        let r = raw
            .bus_creator_info(attach::ALL)
            .map_err(|e| CtlError::errno("BUS_CREATOR_INFO failed", e))?;
        let rec = records(conn, r)?
            .into_iter()
            .next()
            .ok_or_else(|| CtlError::Failure("BUS_CREATOR_INFO returned nothing".into()))?;
        let name = rec
            .items
            .iter()
            .find(|i| i.ty == ITEM_MAKE_NAME)
            .and_then(|i| i.as_item().as_str().map(String::from))
            .unwrap_or_default();
        let mut fields = vec![
            ("BusName", name),
            ("BusID", conn.bus_id()),
            ("BusFlags", format!("{:#x}", rec.flags)),
        ];
        let m = meta(&rec);
        let mf = status_fields(&m);
        if mf.is_empty() && json.is_none() {
            fields.push((
                "CreatorMetadata",
                "none (the bus was made without `kdbusctl make-bus --creator-info`)".into(),
            ));
        }
        fields.extend(mf);
        print_fields(&fields, json);
        return Ok(());
    };
    let (id, name) = peer_arg(peer)?;
    let r = match (&id, &name) {
        (Some(id), _) => raw.conn_info(*id, attach::ALL),
        (None, Some(n)) => raw.conn_info_name(n, 0, attach::ALL),
        (None, None) => unreachable!(),
    };
    let r = r.map_err(|e| match e {
        kdbus::Errno::ESRCH | kdbus::Errno::ENXIO => CtlError::NoOwner(format!(
            "{peer}: no such peer: the name has no owner or the connection does not exist ({})",
            crate::error::errno_name(e)
        )),
        e => CtlError::errno(&format!("CONN_INFO of {peer} failed"), e),
    })?;
    let rec = records(conn, r)?
        .into_iter()
        .next()
        .ok_or_else(|| CtlError::NoOwner(format!("{peer}: no such peer")))?;
    let m = meta(&rec);
    let mut fields = status_fields(&m);
    fields.push(("UniqueName", format!(":1.{}", rec.id)));
    fields.push((
        "WellKnownNames",
        m.names.clone().unwrap_or_default().join(" "),
    ));
    fields.push(("ConnectionFlags", hello_flags(rec.flags)));
    print_fields(&fields, json);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kdbus::OwnedItem;

    fn rec(id: u64, flags: u64, name: Option<(&str, u64)>) -> InfoRecord {
        let items = name
            .map(|(n, f)| {
                let mut p = f.to_ne_bytes().to_vec();
                p.extend_from_slice(n.as_bytes());
                p.push(0);
                vec![OwnedItem {
                    offset: 24,
                    size: 16 + p.len() as u64,
                    ty: ITEM_OWNED_NAME,
                    payload: p,
                }]
            })
            .unwrap_or_default();
        InfoRecord {
            offset: 0,
            size: 0,
            id,
            flags,
            items,
        }
    }

    #[test]
    fn list_rows() {
        let recs = vec![
            rec(10, HELLO_ACCEPT_FD, None),
            rec(3, HELLO_ACCEPT_FD, Some(("org.example.Echo", NAME_PRIMARY))),
            rec(
                9,
                HELLO_ACCEPT_FD,
                Some(("org.example.Echo", NAME_IN_QUEUE)),
            ),
            rec(
                4,
                HELLO_ACTIVATOR,
                Some(("org.example.Act", NAME_ACTIVATOR)),
            ),
            rec(
                5,
                HELLO_ACTIVATOR,
                Some(("org.example.Echo", NAME_ACTIVATOR)),
            ),
            rec(6, HELLO_POLICY_HOLDER, None),
        ];
        let r = rows(&recs);
        let v: Vec<(String, Option<u64>, String)> =
            r.into_iter().map(|r| (r.name, r.id, r.state)).collect();
        let s = |n: &str, id: Option<u64>, st: &str| (n.to_string(), id, st.to_string());
        assert_eq!(
            v,
            vec![
                s(":1.3", Some(3), "unique"),
                s(":1.6", Some(6), "policy-holder"),
                s(":1.9", Some(9), "unique"),
                s(":1.10", Some(10), "unique"),
                s("org.example.Act", None, "activatable"),
                s("org.example.Echo", Some(3), "primary,activatable"),
                s("org.example.Echo", Some(9), "queued"),
            ]
        );
    }

    #[test]
    fn peers_and_caps() {
        assert_eq!(peer_arg(":1.7").unwrap(), (Some(7), None));
        assert_eq!(peer_arg("7").unwrap(), (Some(7), None));
        assert_eq!(peer_arg("a.b").unwrap(), (None, Some("a.b".into())));
        assert!(peer_arg("no dots").is_err());
        assert!(peer_arg(":x").is_err());
        // last_cap 40, N = 2 words per set: inheritable none, permitted
        // chown + ipc_owner, effective chown, bounding bits 32 and 40.
        let words = [0, 0, 1 | (1 << 15), 0, 1, 0, 0, 1 | (1 << 8)];
        let [i, p, e, b] = cap_sets(40, &words);
        assert!(i.is_empty());
        assert_eq!(p, vec!["cap_chown", "cap_ipc_owner"]);
        assert_eq!(e, vec!["cap_chown"]);
        assert_eq!(b, vec!["cap_mac_override", "cap_checkpoint_restore"]);
        let m = Metadata {
            pid_comm: Some("echo".into()),
            ..Default::default()
        };
        assert_eq!(status_fields(&m), vec![("Comm", "echo".to_string())]);
        assert_eq!(
            hello_flags(HELLO_ACCEPT_FD | HELLO_MONITOR),
            "accept-fd monitor"
        );
    }
}
