//! Output as busctl prints it: values on one line (`format_cmdline`), the
//! message tree of `busctl monitor` (`bus_message_dump`), JSON
//! (`json_transform_message`), tables.

use std::fmt::Write as _;

use serde_json::{json, Map, Value as Json};
use zvariant::Value;

use crate::cli::JsonMode;

/// C-style escaping of a string as busctl's `cescape` does for ASCII
/// (non-ASCII UTF-8 is kept).
pub fn cescape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\x07' => o.push_str("\\a"),
            '\x08' => o.push_str("\\b"),
            '\x0c' => o.push_str("\\f"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            '\x0b' => o.push_str("\\v"),
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\'' => o.push_str("\\'"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(o, "\\x{:02x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// `printf("%g")` of a double.
pub fn fmt_g(d: f64) -> String {
    if d.is_nan() {
        return if d.is_sign_negative() { "-nan" } else { "nan" }.into();
    }
    if d.is_infinite() {
        return if d < 0.0 { "-inf" } else { "inf" }.into();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // %g: precision 6; exponent form if exp < -4 or exp >= 6.
    let e = format!("{:.5e}", d);
    let (mant, exp) = e.split_once('e').unwrap();
    let exp: i32 = exp.parse().unwrap();
    let strip = |s: &str| -> String {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s.to_string()
        }
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", strip(mant), exp.abs())
    } else {
        let decimals = (5 - exp).max(0) as usize;
        strip(&format!("{:.*}", decimals, d))
    }
}

fn basic_text(v: &Value<'_>) -> Option<String> {
    Some(match v {
        Value::U8(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::I16(n) => n.to_string(),
        Value::U16(n) => n.to_string(),
        Value::I32(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F64(d) => fmt_g(*d),
        Value::Str(s) => format!("\"{}\"", cescape(s.as_str())),
        Value::ObjectPath(p) => format!("\"{}\"", cescape(p.as_str())),
        Value::Signature(s) => format!("\"{}\"", cescape(&s.to_string())),
        #[cfg(unix)]
        Value::Fd(fd) => std::os::fd::AsRawFd::as_raw_fd(fd).to_string(),
        _ => return None,
    })
}

fn cmdline_one(v: &Value<'_>, out: &mut Vec<String>) {
    if let Some(t) = basic_text(v) {
        out.push(t);
        return;
    }
    match v {
        Value::Array(a) => {
            out.push(a.len().to_string());
            for e in a.iter() {
                cmdline_one(e, out);
            }
        }
        Value::Dict(d) => {
            let entries: Vec<_> = d.iter().collect();
            out.push(entries.len().to_string());
            for (k, v) in entries {
                cmdline_one(k, out);
                cmdline_one(v, out);
            }
        }
        Value::Structure(s) => {
            for f in s.fields() {
                cmdline_one(f, out);
            }
        }
        Value::Value(inner) => {
            out.push(inner.value_signature().to_string());
            cmdline_one(inner, out);
        }
        _ => out.push("?".into()),
    }
}

/// The reply line of `busctl call`: the signature, then every value in the
/// argument syntax (`s "hello"`, `as 3 "a" "b" "c"`, `a{sv} 1 "key" s "val"`).
pub fn cmdline(signature: &str, args: &[Value<'_>]) -> String {
    let mut parts = vec![signature.to_string()];
    for a in args {
        cmdline_one(a, &mut parts);
    }
    parts.join(" ")
}

fn dump_one(v: &Value<'_>, level: usize, out: &mut String) {
    let pre = " ".repeat(2 + 8 * level);
    let open = |out: &mut String, kind: &str, contents: &str| {
        let _ = writeln!(out, "{pre}{kind} \"{contents}\" {{");
    };
    let close = |out: &mut String| {
        let _ = writeln!(out, "{pre}}};");
    };
    match v {
        Value::U8(n) => {
            let _ = writeln!(out, "{pre}BYTE {n};");
        }
        Value::Bool(b) => {
            let _ = writeln!(out, "{pre}BOOLEAN {b};");
        }
        Value::I16(n) => {
            let _ = writeln!(out, "{pre}INT16 {n};");
        }
        Value::U16(n) => {
            let _ = writeln!(out, "{pre}UINT16 {n};");
        }
        Value::I32(n) => {
            let _ = writeln!(out, "{pre}INT32 {n};");
        }
        Value::U32(n) => {
            let _ = writeln!(out, "{pre}UINT32 {n};");
        }
        Value::I64(n) => {
            let _ = writeln!(out, "{pre}INT64 {n};");
        }
        Value::U64(n) => {
            let _ = writeln!(out, "{pre}UINT64 {n};");
        }
        Value::F64(d) => {
            let _ = writeln!(out, "{pre}DOUBLE {};", fmt_g(*d));
        }
        Value::Str(s) => {
            let _ = writeln!(out, "{pre}STRING \"{}\";", cescape(s.as_str()));
        }
        Value::ObjectPath(p) => {
            let _ = writeln!(out, "{pre}OBJECT_PATH \"{}\";", cescape(p.as_str()));
        }
        Value::Signature(s) => {
            let _ = writeln!(out, "{pre}SIGNATURE \"{s}\";");
        }
        Value::Array(a) => {
            open(out, "ARRAY", &a.element_signature().to_string());
            for e in a.iter() {
                dump_one(e, level + 1, out);
            }
            close(out);
        }
        Value::Dict(d) => {
            let sig = d.signature().to_string();
            let entry = sig.trim_start_matches('a');
            open(out, "ARRAY", entry);
            let inner = &entry[1..entry.len() - 1];
            let pre2 = " ".repeat(2 + 8 * (level + 1));
            for (k, v) in d.iter() {
                let _ = writeln!(out, "{pre2}DICT_ENTRY \"{inner}\" {{");
                dump_one(k, level + 2, out);
                dump_one(v, level + 2, out);
                let _ = writeln!(out, "{pre2}}};");
            }
            close(out);
        }
        Value::Structure(s) => {
            let sig = s.signature().to_string();
            open(out, "STRUCT", &sig[1..sig.len() - 1]);
            for f in s.fields() {
                dump_one(f, level + 1, out);
            }
            close(out);
        }
        Value::Value(inner) => {
            open(out, "VARIANT", &inner.value_signature().to_string());
            dump_one(inner, level + 1, out);
            close(out);
        }
        #[cfg(unix)]
        Value::Fd(fd) => {
            let _ = writeln!(out, "{pre}UNIX_FD {};", std::os::fd::AsRawFd::as_raw_fd(fd));
        }
        #[allow(deprecated)]
        _ => {
            let _ = writeln!(out, "{pre}UNKNOWN;");
        }
    }
}

/// The body tree of `busctl monitor`: `MESSAGE "sig" { ... };` (values
/// indented by 8, the tree by 2).
pub fn dump_body(signature: &str, args: &[Value<'_>]) -> String {
    let mut out = format!("  MESSAGE \"{signature}\" {{\n");
    for a in args {
        dump_one(a, 1, &mut out);
    }
    out.push_str("  };\n");
    out
}

/// busctl's JSON form of a value (`json_transform_one`): numbers, booleans,
/// strings, arrays; dicts as objects (keys as strings), structs as arrays,
/// variants as `{"type": sig, "data": value}`.
pub fn json_value(v: &Value<'_>) -> Json {
    match v {
        Value::U8(n) => json!(n),
        Value::Bool(b) => json!(b),
        Value::I16(n) => json!(n),
        Value::U16(n) => json!(n),
        Value::I32(n) => json!(n),
        Value::U32(n) => json!(n),
        Value::I64(n) => json!(n),
        Value::U64(n) => json!(n),
        Value::F64(d) => json!(d),
        Value::Str(s) => json!(s.as_str()),
        Value::ObjectPath(p) => json!(p.as_str()),
        Value::Signature(s) => json!(s.to_string()),
        Value::Array(a) => Json::Array(a.iter().map(json_value).collect()),
        Value::Dict(d) => {
            let mut m = Map::new();
            for (k, v) in d.iter() {
                let key = match k {
                    Value::Str(s) => s.as_str().to_string(),
                    Value::ObjectPath(p) => p.as_str().to_string(),
                    other => basic_text(other).unwrap_or_default(),
                };
                m.insert(key, json_value(v));
            }
            Json::Object(m)
        }
        Value::Structure(s) => Json::Array(s.fields().iter().map(json_value).collect()),
        Value::Value(inner) => json!({
            "type": inner.value_signature().to_string(),
            "data": json_value(inner),
        }),
        #[cfg(unix)]
        Value::Fd(fd) => json!(std::os::fd::AsRawFd::as_raw_fd(fd)),
        #[allow(deprecated)]
        _ => Json::Null,
    }
}

/// A message body as busctl's JSON: `{"type": "<signature>", "data": [...]}`.
pub fn json_body(signature: &str, args: &[Value<'_>]) -> Json {
    json!({
        "type": signature,
        "data": args.iter().map(json_value).collect::<Vec<_>>(),
    })
}

/// systemd's pretty JSON layout: 8-space indentation and `" : "`.
struct SdPretty {
    level: usize,
    has_value: bool,
}

impl serde_json::ser::Formatter for SdPretty {
    fn begin_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"[")
    }
    fn end_array<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.level -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            w.write_all(" ".repeat(8 * self.level).as_bytes())?;
        }
        w.write_all(b"]")
    }
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        w.write_all(" ".repeat(8 * self.level).as_bytes())
    }
    fn end_array_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
    fn begin_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.level += 1;
        self.has_value = false;
        w.write_all(b"{")
    }
    fn end_object<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        self.level -= 1;
        if self.has_value {
            w.write_all(b"\n")?;
            w.write_all(" ".repeat(8 * self.level).as_bytes())?;
        }
        w.write_all(b"}")
    }
    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        w: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        w.write_all(if first { b"\n" } else { b",\n" })?;
        w.write_all(" ".repeat(8 * self.level).as_bytes())
    }
    fn begin_object_value<W: ?Sized + std::io::Write>(&mut self, w: &mut W) -> std::io::Result<()> {
        w.write_all(b" : ")
    }
    fn end_object_value<W: ?Sized + std::io::Write>(&mut self, _w: &mut W) -> std::io::Result<()> {
        self.has_value = true;
        Ok(())
    }
}

/// `v` as text in `mode` (no trailing newline).
pub fn json_text(v: &Json, mode: JsonMode) -> String {
    match mode {
        JsonMode::Short => v.to_string(),
        JsonMode::Pretty => {
            let mut buf = Vec::new();
            let mut ser = serde_json::Serializer::with_formatter(
                &mut buf,
                SdPretty {
                    level: 0,
                    has_value: false,
                },
            );
            serde::Serialize::serialize(v, &mut ser).expect("JSON to memory");
            String::from_utf8(buf).expect("JSON is UTF-8")
        }
    }
}

/// Left-aligned columns separated by one space (the last column is not
/// padded), as busctl's tables.
pub fn table(header: Option<&[&str]>, rows: &[Vec<String>]) -> String {
    let ncol = header
        .map(|h| h.len())
        .unwrap_or_else(|| rows.first().map_or(0, Vec::len));
    let mut widths = vec![0usize; ncol];
    for r in header
        .map(|h| h.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .iter()
        .chain(rows.iter())
    {
        for (i, c) in r.iter().enumerate().take(ncol) {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate().take(ncol) {
            if i + 1 == ncol {
                l.push_str(c);
            } else {
                let _ = write!(l, "{:<w$} ", c, w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    if let Some(h) = header {
        line(&h.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    }
    for r in rows {
        line(r);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sigparse::parse_args;

    fn args(sig: &str, a: &str) -> Vec<Value<'static>> {
        let w: Vec<String> = a.split_whitespace().map(String::from).collect();
        parse_args(sig, &w).unwrap()
    }

    #[test]
    fn cmdline_like_busctl() {
        assert_eq!(cmdline("s", &args("s", "hello")), "s \"hello\"");
        assert_eq!(
            cmdline("as", &args("as", "3 a b c")),
            "as 3 \"a\" \"b\" \"c\""
        );
        assert_eq!(
            cmdline("a{sv}", &args("a{sv}", "1 key s val")),
            "a{sv} 1 \"key\" s \"val\""
        );
        assert_eq!(cmdline("(si)", &args("(si)", "str 5")), "(si) \"str\" 5");
        assert_eq!(cmdline("v", &args("v", "s x")), "v s \"x\"");
        assert_eq!(
            cmdline("bdyt", &args("bdyt", "false 0.1 7 99")),
            "bdyt false 0.1 7 99"
        );
        assert_eq!(
            cmdline("s", &[Value::from("a\"b\n\\c")]),
            "s \"a\\\"b\\n\\\\c\""
        );
        assert_eq!(cmdline("", &[]), "");
    }

    #[test]
    fn printf_g() {
        for (d, s) in [
            (0.1, "0.1"),
            (2.5, "2.5"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1234567.0, "1.23457e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-3.25, "-3.25"),
            (1.0 / 3.0, "0.333333"),
        ] {
            assert_eq!(fmt_g(d), s, "{d}");
        }
    }

    #[test]
    fn dump_tree() {
        let d = dump_body("sa{sv}", &args("sa{sv}", "hi 1 k u 5"));
        assert_eq!(
            d,
            "  MESSAGE \"sa{sv}\" {\n          STRING \"hi\";\n          ARRAY \"{sv}\" {\n                  DICT_ENTRY \"sv\" {\n                          STRING \"k\";\n                          VARIANT \"u\" {\n                                  UINT32 5;\n                          };\n                  };\n          };\n  };\n"
        );
        let d = dump_body("(si)", &args("(si)", "x 1"));
        assert!(d.contains("          STRUCT \"si\" {\n                  STRING \"x\";\n                  INT32 1;\n          };\n"));
    }

    #[test]
    fn json_like_busctl() {
        let v = json_body("sa{sv}(si)", &args("sa{sv}(si)", "hello 1 key s val str 5"));
        assert_eq!(
            json_text(&v, JsonMode::Short),
            r#"{"type":"sa{sv}(si)","data":["hello",{"key":{"type":"s","data":"val"}},["str",5]]}"#
        );
        let p = json_text(&json_body("s", &args("s", "hi")), JsonMode::Pretty);
        assert_eq!(
            p,
            "{\n        \"type\" : \"s\",\n        \"data\" : [\n                \"hi\"\n        ]\n}"
        );
        assert_eq!(json_text(&json!([]), JsonMode::Pretty), "[]");
    }

    #[test]
    fn tables() {
        let t = table(
            Some(&["NAME", "PID", "X"]),
            &[vec![":1.2".into(), "7".into(), "-".into()]],
        );
        assert_eq!(t, "NAME PID X\n:1.2 7   -\n");
    }
}
