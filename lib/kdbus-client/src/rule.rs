//! D-Bus match rules: parsing the string form, turning a rule into kdbus
//! `MATCH_ADD` entries with the bloom masks sd-bus builds
//! (dbus-on-kdbus.md 6.2, bloom-interop.md), and the userspace re-check of
//! received messages (bloom matching has false positives).

use core::fmt;
use std::collections::BTreeMap;
use std::str::FromStr;

use kdbus::{BloomParams, RuleMask, MATCH_ID_ANY};

use crate::message::{
    is_bus_name, is_interface_name, is_member_name, is_object_path, parse_unique_name, Message,
    DBUS_INTERFACE, DBUS_NAME, DBUS_PATH,
};
use crate::wire::MessageType;
use crate::{Error, Result};

/// Highest argument index a rule may name (`arg63`).
pub const MAX_ARG: u8 = 63;

/// A parsed D-Bus match rule.
///
/// ```
/// use kdbus_client::MatchRule;
/// let r: MatchRule = "type='signal',interface='org.example.Echo',member='Pinged',arg0='hi'"
///     .parse()
///     .unwrap();
/// assert_eq!(r.interface.as_deref(), Some("org.example.Echo"));
/// assert_eq!(r.args.get(&0).map(String::as_str), Some("hi"));
/// assert!("type='nonsense'".parse::<MatchRule>().is_err());
/// assert!("member='unterminated".parse::<MatchRule>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MatchRule {
    /// `type=`.
    pub msg_type: Option<MessageType>,
    /// `sender=` (unique or well-known name).
    pub sender: Option<String>,
    /// `interface=`.
    pub interface: Option<String>,
    /// `member=`.
    pub member: Option<String>,
    /// `path=`.
    pub path: Option<String>,
    /// `path_namespace=`.
    pub path_namespace: Option<String>,
    /// `destination=`.
    pub destination: Option<String>,
    /// `argN=` by N.
    pub args: BTreeMap<u8, String>,
    /// `argNpath=` by N.
    pub arg_paths: BTreeMap<u8, String>,
    /// `argNhas=` by N (sd-bus v225+).
    pub arg_has: BTreeMap<u8, String>,
    /// `arg0namespace=`.
    pub arg0_namespace: Option<String>,
    /// `eavesdrop=` (accepted, no effect on kdbus).
    pub eavesdrop: Option<bool>,
}

fn invalid(m: impl Into<String>) -> Error {
    Error::InvalidMatchRule(m.into())
}

/// Splits a rule string into `(key, value)` pairs: comma-separated
/// `key=value`, values optionally in single quotes (no escapes inside);
/// outside quotes a backslash makes the next character literal (so `\'`
/// is a quote); whitespace before a key is skipped (as sd-bus's parser).
fn split(rule: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut chars = rule.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        loop {
            match chars.next() {
                Some('=') => break,
                Some(c) if c == ',' || c == '\'' => {
                    return Err(invalid(format!("unexpected {c:?} in key {key:?}")))
                }
                Some(c) => key.push(c),
                None => return Err(invalid(format!("key {key:?} without '='"))),
            }
        }
        let key = key.trim_end().to_string();
        if key.is_empty() {
            return Err(invalid("empty key"));
        }
        let mut value = String::new();
        let mut quoted = false;
        loop {
            match chars.next() {
                None => {
                    if quoted {
                        return Err(invalid(format!("unterminated quote in {key}")));
                    }
                    break;
                }
                Some('\'') => quoted = !quoted,
                Some(',') if !quoted => break,
                Some('\\') if !quoted => match chars.next() {
                    Some(c) => value.push(c),
                    None => return Err(invalid("trailing backslash")),
                },
                Some(c) => value.push(c),
            }
        }
        out.push((key, value));
    }
    Ok(out)
}

fn arg_key(key: &str) -> Option<(u8, &str)> {
    let rest = key.strip_prefix("arg")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || digits > 2 || (digits == 2 && rest.starts_with('0')) {
        return None;
    }
    let n: u8 = rest[..digits].parse().ok()?;
    Some((n, &rest[digits..]))
}

impl FromStr for MatchRule {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

impl MatchRule {
    /// A rule matching everything (the empty string).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a rule string (see the type's documentation); unknown keys,
    /// repeated keys, invalid names or paths, `argN` beyond 63, unterminated
    /// quotes and a `path` together with a `path_namespace` are errors.
    pub fn parse(s: &str) -> Result<Self> {
        let mut r = MatchRule::default();
        let mut seen = std::collections::HashSet::new();
        for (k, v) in split(s)? {
            if !seen.insert(k.clone()) {
                return Err(invalid(format!("key {k} given twice")));
            }
            let need = |ok: bool, what: &str| {
                if ok {
                    Ok(v.clone())
                } else {
                    Err(invalid(format!("{k}='{v}': not a valid {what}")))
                }
            };
            match k.as_str() {
                "type" => {
                    r.msg_type = Some(match v.as_str() {
                        "signal" => MessageType::Signal,
                        "method_call" => MessageType::MethodCall,
                        "method_return" => MessageType::MethodReturn,
                        "error" => MessageType::Error,
                        _ => return Err(invalid(format!("unknown message type {v:?}"))),
                    })
                }
                "sender" => r.sender = Some(need(is_bus_name(&v) || v == DBUS_NAME, "bus name")?),
                "destination" => {
                    r.destination = Some(need(is_bus_name(&v) || v == DBUS_NAME, "bus name")?)
                }
                "interface" => r.interface = Some(need(is_interface_name(&v), "interface name")?),
                "member" => r.member = Some(need(is_member_name(&v), "member name")?),
                "path" => r.path = Some(need(is_object_path(&v), "object path")?),
                "path_namespace" => {
                    r.path_namespace = Some(need(is_object_path(&v), "object path")?)
                }
                "eavesdrop" => {
                    r.eavesdrop = Some(match v.as_str() {
                        "true" => true,
                        "false" => false,
                        _ => return Err(invalid(format!("eavesdrop='{v}'"))),
                    })
                }
                "arg0namespace" => {
                    let ok = !v.is_empty()
                        && v.len() <= 255
                        && v.split('.').all(|e| {
                            !e.is_empty()
                                && e.bytes()
                                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                        });
                    r.arg0_namespace = Some(need(ok, "namespace")?);
                }
                _ => match arg_key(&k) {
                    Some((n, suffix)) if n <= MAX_ARG => match suffix {
                        "" => {
                            r.args.insert(n, v);
                        }
                        "path" => {
                            r.arg_paths.insert(n, need(v.starts_with('/'), "path")?);
                        }
                        "has" => {
                            r.arg_has.insert(n, v);
                        }
                        _ => return Err(invalid(format!("unknown key {k}"))),
                    },
                    Some((n, _)) => return Err(invalid(format!("argument index {n} > 63"))),
                    None => return Err(invalid(format!("unknown key {k}"))),
                },
            }
        }
        for n in r.args.keys() {
            if r.arg_paths.contains_key(n) || r.arg_has.contains_key(n) {
                return Err(invalid(format!("arg{n} given in two forms")));
            }
        }
        if r.path.is_some() && r.path_namespace.is_some() {
            return Err(invalid("path and path_namespace together"));
        }
        if r.arg0_namespace.is_some() && (r.args.contains_key(&0) || r.arg_paths.contains_key(&0)) {
            return Err(invalid("arg0namespace together with arg0"));
        }
        Ok(r)
    }

    /// The bloom mask elements of this rule as sd-bus v228 puts them
    /// (dbus-on-kdbus.md 6.2): `message-type`, `interface`, `member`,
    /// `path`, `path-slash-prefix` for a path_namespace (also "/"),
    /// `argN`, `argN-has`, `arg0-dot-prefix`; `argNpath`, senders,
    /// destinations and `eavesdrop` add nothing.
    pub fn mask(&self) -> RuleMask {
        let mut m = RuleMask::new();
        if let Some(t) = self.msg_type {
            m = m.message_type(t.bloom_type());
        }
        if let Some(i) = &self.interface {
            m = m.interface(i);
        }
        if let Some(mem) = &self.member {
            m = m.member(mem);
        }
        if let Some(p) = &self.path {
            m = m.path(p);
        }
        if let Some(ns) = &self.path_namespace {
            // The bloom module leaves "/" out (every filter with a path has
            // it); sd-bus adds it, and so do we for identical masks.
            m = m.element(&kdbus::bloom::element("path-slash-prefix", ns));
        }
        for (n, v) in &self.args {
            m = m.arg(*n as usize, v);
        }
        for (n, v) in &self.arg_has {
            m = m.arg_has(*n as usize, v);
        }
        if let Some(ns) = &self.arg0_namespace {
            m = m.arg0_namespace(ns);
        }
        m
    }

    /// Whether the rule could match the driver's `NameOwnerChanged`
    /// (dbus-on-kdbus.md 6.2: then the kernel notifications are asked for
    /// too).
    pub fn matches_name_owner_changed(&self) -> bool {
        self.msg_type.is_none_or(|t| t == MessageType::Signal)
            && self.sender.as_deref().is_none_or(|s| s == DBUS_NAME)
            && self
                .interface
                .as_deref()
                .is_none_or(|s| s == DBUS_INTERFACE)
            && self
                .member
                .as_deref()
                .is_none_or(|s| s == "NameOwnerChanged")
            && self.path.as_deref().is_none_or(|s| s == DBUS_PATH)
            && self
                .path_namespace
                .as_deref()
                .is_none_or(|ns| path_in_namespace(DBUS_PATH, ns))
            && self.destination.is_none()
            && self.arg_has.is_empty()
            && self.args.keys().all(|n| *n < 3)
            && self.arg_paths.keys().all(|n| *n < 3)
    }

    /// The kdbus `MATCH_ADD` commands for this rule with `cookie` on a bus
    /// with `bloom` (dbus-on-kdbus.md 6.2): first the entry for messages
    /// (items `ID`, `DST_ID`, `BLOOM_MASK`, `NAME` as they apply), then, if
    /// the rule can match `NameOwnerChanged`, the entries for the kernel's
    /// name and id notifications.
    pub fn to_kdbus(&self, cookie: u64, bloom: BloomParams) -> Vec<kdbus::MatchRule> {
        let mut out = Vec::new();
        let mut e = kdbus::MatchRule::new(cookie);
        let sender_id = self.sender.as_deref().and_then(parse_unique_name);
        if let Some(id) = sender_id {
            e = e.sender_id(id);
        }
        if let Some(id) = self.destination.as_deref().and_then(parse_unique_name) {
            e = e.dst_id(id);
        }
        let mask = self.mask();
        if !mask.is_empty() {
            e = e.bloom_mask(&mask.mask(bloom));
        }
        if let (Some(s), None) = (&self.sender, sender_id) {
            e = e.name(s);
        }
        out.push(e);
        if self.matches_name_owner_changed() {
            self.name_change_entries(cookie, &mut out);
        }
        out
    }

    fn name_change_entries(&self, cookie: u64, out: &mut Vec<kdbus::MatchRule>) {
        let arg = |n: u8| {
            self.args
                .get(&n)
                .map(String::as_str)
                .filter(|s| !s.is_empty())
        };
        let (arg0, arg1, arg2) = (arg(0), arg(1), arg(2));
        // Owners must be unique names; 0 = unset.
        let owner = |a: Option<&str>| match a {
            None => Some(0),
            Some(s) => parse_unique_name(s),
        };
        let (Some(old), Some(new)) = (owner(arg1), owner(arg2)) else {
            return;
        };
        let name_id = arg0.and_then(parse_unique_name);
        if let Some(id) = name_id {
            if (old != 0 && old != id) || (new != 0 && new != id) {
                return;
            }
        }
        let any = |v: u64| if v == 0 { MATCH_ID_ANY } else { v };
        if name_id.is_none() {
            // arg0 unset or a well-known name: name notifications.
            if old == 0 {
                out.push(kdbus::MatchRule::new(cookie).name_add(any(old), any(new), arg0));
            }
            if new == 0 {
                out.push(kdbus::MatchRule::new(cookie).name_remove(any(old), any(new), arg0));
            }
            out.push(kdbus::MatchRule::new(cookie).name_change(any(old), any(new), arg0));
        }
        if arg0.is_none() || name_id.is_some() {
            let base = name_id.unwrap_or(0);
            if old == 0 {
                let id = if new != 0 { new } else { any(base) };
                out.push(kdbus::MatchRule::new(cookie).id_add(id));
            }
            if new == 0 {
                let id = if old != 0 { old } else { any(base) };
                out.push(kdbus::MatchRule::new(cookie).id_remove(id));
            }
        }
    }

    /// The userspace check of a received message against every component
    /// (the kernel's bloom test is only a pre-filter). `sender` names are
    /// compared with the sender's unique name, or with its well-known names
    /// when the kernel attached them (otherwise the kernel's NAME check is
    /// trusted).
    pub fn matches(&self, msg: &Message) -> bool {
        if self.msg_type.is_some_and(|t| t != msg.message_type()) {
            return false;
        }
        if let Some(s) = &self.sender {
            let ok = match msg.sender() {
                Some(ms) if ms == s => true,
                Some(_) if parse_unique_name(s).is_some() || s == DBUS_NAME => false,
                Some(_) => msg.metadata().owns(s).unwrap_or(true),
                None => false,
            };
            if !ok {
                return false;
            }
        }
        let eq = |want: &Option<String>, got: Option<&str>| {
            want.as_deref().is_none_or(|w| Some(w) == got)
        };
        if !eq(&self.interface, msg.interface())
            || !eq(&self.member, msg.member())
            || !eq(&self.path, msg.path())
            || !eq(&self.destination, msg.destination())
        {
            return false;
        }
        if let Some(ns) = &self.path_namespace {
            match msg.path() {
                Some(p) if path_in_namespace(p, ns) => {}
                _ => return false,
            }
        }
        if self.args.is_empty()
            && self.arg_paths.is_empty()
            && self.arg_has.is_empty()
            && self.arg0_namespace.is_none()
        {
            return true;
        }
        let Ok(args) = msg.args() else {
            return false;
        };
        let string = |n: u8| -> Option<String> {
            match &**args.get(n as usize)? {
                zvariant::Value::Str(s) => Some(s.as_str().into()),
                zvariant::Value::ObjectPath(p) => Some(p.as_str().into()),
                zvariant::Value::Signature(s) => Some(s.to_string()),
                _ => None,
            }
        };
        for (n, v) in &self.args {
            // argN matches strings only (not paths or signatures).
            match args.get(*n as usize).map(|a| &**a) {
                Some(zvariant::Value::Str(s)) if s.as_str() == v => {}
                _ => return false,
            }
        }
        for (n, v) in &self.arg_paths {
            match args.get(*n as usize).map(|a| &**a) {
                Some(zvariant::Value::Str(_)) | Some(zvariant::Value::ObjectPath(_)) => {}
                _ => return false,
            }
            let a = string(*n).unwrap_or_default();
            if !(a == *v
                || (v.ends_with('/') && a.starts_with(v.as_str()))
                || (a.ends_with('/') && v.starts_with(a.as_str())))
            {
                return false;
            }
        }
        if let Some(ns) = &self.arg0_namespace {
            match args.first().map(|a| &**a) {
                Some(zvariant::Value::Str(s))
                    if s.as_str() == ns
                        || (s.as_str().starts_with(ns.as_str())
                            && s.as_str()[ns.len()..].starts_with('.')) => {}
                _ => return false,
            }
        }
        for (n, v) in &self.arg_has {
            let Some(zvariant::Value::Array(a)) = args.get(*n as usize).map(|a| &**a) else {
                return false;
            };
            let found = a.iter().any(|e| match e {
                zvariant::Value::Str(s) => s.as_str() == v,
                zvariant::Value::ObjectPath(p) => p.as_str() == v,
                _ => false,
            });
            if !found {
                return false;
            }
        }
        true
    }
}

/// Whether `path` is `ns` or below it.
pub fn path_in_namespace(path: &str, ns: &str) -> bool {
    ns == "/" || path == ns || (path.starts_with(ns) && path[ns.len()..].starts_with('/'))
}

fn quote(v: &str) -> String {
    // Quote, and close/escape/reopen around single quotes.
    format!("'{}'", v.replace('\'', "'\\''"))
}

impl fmt::Display for MatchRule {
    /// The canonical string form (parses back to an equal rule).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts: Vec<String> = Vec::new();
        if let Some(t) = self.msg_type {
            parts.push(format!("type='{}'", t.as_str()));
        }
        let mut kv = |k: &str, v: &Option<String>| {
            if let Some(v) = v {
                parts.push(format!("{k}={}", quote(v)));
            }
        };
        kv("sender", &self.sender);
        kv("interface", &self.interface);
        kv("member", &self.member);
        kv("path", &self.path);
        kv("path_namespace", &self.path_namespace);
        kv("destination", &self.destination);
        for (n, v) in &self.args {
            parts.push(format!("arg{n}={}", quote(v)));
        }
        for (n, v) in &self.arg_paths {
            parts.push(format!("arg{n}path={}", quote(v)));
        }
        for (n, v) in &self.arg_has {
            parts.push(format!("arg{n}has={}", quote(v)));
        }
        if let Some(ns) = &self.arg0_namespace {
            parts.push(format!("arg0namespace={}", quote(ns)));
        }
        if let Some(e) = self.eavesdrop {
            parts.push(format!("eavesdrop='{e}'"));
        }
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests;
