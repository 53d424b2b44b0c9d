//! busctl's argument syntax (`message_append_cmdline` of busctl.c): a
//! signature followed by one word per basic value; an array is its element
//! count followed by the elements, a variant its signature followed by the
//! value, a struct or dict entry just its members in order.
//!
//! ```text
//! s hello                 -> ("hello")
//! as 3 a b c              -> (["a", "b", "c"])
//! a{sv} 1 key s val       -> ({"key": <"val">})
//! (si) str 5              -> (("str", 5))
//! v s x                   -> (<"x">)
//! ```

use core::fmt;

use zvariant::{Array, Dict, ObjectPath, Signature, StructureBuilder, Value};

use crate::error::{usage, Result};

/// A parsed single complete type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    /// A basic type: one of `ybnqiuxtdsogh`.
    Basic(char),
    /// `v`.
    Variant,
    /// `aT` (not a dict).
    Array(Box<Ty>),
    /// `a{KV}`.
    Dict(Box<Ty>, Box<Ty>),
    /// `(...)`.
    Struct(Vec<Ty>),
}

impl fmt::Display for Ty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ty::Basic(c) => write!(f, "{c}"),
            Ty::Variant => f.write_str("v"),
            Ty::Array(t) => write!(f, "a{t}"),
            Ty::Dict(k, v) => write!(f, "a{{{k}{v}}}"),
            Ty::Struct(ts) => {
                f.write_str("(")?;
                for t in ts {
                    write!(f, "{t}")?;
                }
                f.write_str(")")
            }
        }
    }
}

const BASIC: &str = "ybnqiuxtdsogh";

/// Parses a signature into its complete types (errors name the position).
pub fn parse_signature(sig: &str) -> Result<Vec<Ty>> {
    if sig.len() > 255 {
        return Err(usage(format!(
            "invalid signature '{sig}': longer than 255 characters"
        )));
    }
    let b = sig.as_bytes();
    let mut pos = 0;
    let mut out = Vec::new();
    while pos < b.len() {
        out.push(one(sig, b, &mut pos, 0)?);
    }
    Ok(out)
}

fn bad(sig: &str, pos: usize, what: &str) -> crate::error::CtlError {
    usage(format!(
        "invalid signature '{sig}': {what} at position {}",
        pos + 1
    ))
}

fn one(sig: &str, b: &[u8], pos: &mut usize, depth: usize) -> Result<Ty> {
    if depth > 64 {
        return Err(bad(sig, *pos, "containers nested too deep"));
    }
    let Some(&c) = b.get(*pos) else {
        return Err(bad(sig, *pos, "missing type"));
    };
    *pos += 1;
    match c {
        c if BASIC.as_bytes().contains(&c) => Ok(Ty::Basic(c as char)),
        b'v' => Ok(Ty::Variant),
        b'a' => {
            if b.get(*pos) == Some(&b'{') {
                let start = *pos;
                *pos += 1;
                let k = one(sig, b, pos, depth + 1)?;
                if !matches!(k, Ty::Basic(_)) {
                    return Err(bad(sig, start, "dict key must be a basic type"));
                }
                let v = one(sig, b, pos, depth + 1)?;
                if b.get(*pos) != Some(&b'}') {
                    return Err(bad(
                        sig,
                        *pos,
                        "dict entry must have exactly two types and end with '}'",
                    ));
                }
                *pos += 1;
                Ok(Ty::Dict(Box::new(k), Box::new(v)))
            } else {
                if *pos >= b.len() {
                    return Err(bad(sig, *pos - 1, "array without element type"));
                }
                Ok(Ty::Array(Box::new(one(sig, b, pos, depth + 1)?)))
            }
        }
        b'(' => {
            let start = *pos - 1;
            let mut fields = Vec::new();
            loop {
                match b.get(*pos) {
                    None => return Err(bad(sig, start, "unterminated '('")),
                    Some(b')') => {
                        *pos += 1;
                        break;
                    }
                    Some(_) => fields.push(one(sig, b, pos, depth + 1)?),
                }
            }
            if fields.is_empty() {
                return Err(bad(sig, start, "empty struct '()'"));
            }
            Ok(Ty::Struct(fields))
        }
        b'{' => Err(bad(sig, *pos - 1, "dict entry outside an array")),
        b')' | b'}' => Err(bad(sig, *pos - 1, "unbalanced closing bracket")),
        c => Err(bad(
            sig,
            *pos - 1,
            &format!("unknown type character '{}'", c as char),
        )),
    }
}

/// The zvariant signature of a type.
pub fn zsig(t: &Ty) -> Signature {
    Signature::try_from(t.to_string().as_str()).expect("parsed signatures are valid")
}

/// The arguments left to read.
struct Words<'a> {
    words: &'a [String],
    pos: usize,
}

impl Words<'_> {
    fn next(&mut self, what: &Ty) -> Result<&str> {
        match self.words.get(self.pos) {
            Some(w) => {
                self.pos += 1;
                Ok(w)
            }
            None => Err(usage(format!(
                "too few parameters for signature: a value of type '{what}' is missing"
            ))),
        }
    }
}

fn parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "yes" | "y" | "true" | "t" | "on" => Some(true),
        "0" | "no" | "n" | "false" | "f" | "off" => Some(false),
        _ => None,
    }
}

fn parse_int<T: TryFrom<i128>>(v: &str) -> Option<T> {
    let (neg, rest) = match v.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, v.strip_prefix('+').unwrap_or(v)),
    };
    let n = if let Some(h) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
        i128::from_str_radix(h, 16).ok()?
    } else if rest.len() > 1 && rest.starts_with('0') {
        i128::from_str_radix(&rest[1..], 8).ok()?
    } else {
        rest.parse::<i128>().ok()?
    };
    if rest.is_empty() {
        return None;
    }
    T::try_from(if neg { -n } else { n }).ok()
}

fn value(t: &Ty, w: &mut Words<'_>) -> Result<Value<'static>> {
    let num_err = |v: &str, ty: &str| usage(format!("failed to parse '{v}' as {ty}"));
    Ok(match t {
        Ty::Basic(c) => {
            let v = w.next(t)?.to_string();
            match c {
                'y' => Value::U8(parse_int(&v).ok_or_else(|| num_err(&v, "a byte (y)"))?),
                'b' => Value::Bool(parse_bool(&v).ok_or_else(|| num_err(&v, "a boolean (b)"))?),
                'n' => Value::I16(parse_int(&v).ok_or_else(|| num_err(&v, "an int16 (n)"))?),
                'q' => Value::U16(parse_int(&v).ok_or_else(|| num_err(&v, "a uint16 (q)"))?),
                'i' => Value::I32(parse_int(&v).ok_or_else(|| num_err(&v, "an int32 (i)"))?),
                'u' => Value::U32(parse_int(&v).ok_or_else(|| num_err(&v, "a uint32 (u)"))?),
                'x' => Value::I64(parse_int(&v).ok_or_else(|| num_err(&v, "an int64 (x)"))?),
                't' => Value::U64(parse_int(&v).ok_or_else(|| num_err(&v, "a uint64 (t)"))?),
                'd' => Value::F64(v.parse::<f64>().map_err(|_| num_err(&v, "a double (d)"))?),
                's' => Value::from(v),
                'o' => Value::ObjectPath(
                    ObjectPath::try_from(v.clone())
                        .map_err(|_| usage(format!("invalid object path '{v}'")))?,
                ),
                'g' => {
                    // zvariant 5 keeps several complete types as one
                    // structure and would send "(sa{sv})" for "sa{sv}":
                    // refuse rather than send something else.
                    if parse_signature(&v)
                        .map_err(|_| usage(format!("invalid signature value '{v}'")))?
                        .len()
                        > 1
                    {
                        return Err(usage(format!(
                            "signature value '{v}': more than one complete type is not supported \
                             (zvariant would send it in parentheses)"
                        )));
                    }
                    Value::Signature(
                        Signature::try_from(v.as_str())
                            .map_err(|_| usage(format!("invalid signature value '{v}'")))?,
                    )
                }
                'h' => {
                    return Err(usage(
                        "UNIX file descriptors (h) are not supported as arguments",
                    ))
                }
                _ => unreachable!("basic types are checked by the parser"),
            }
        }
        Ty::Variant => {
            let s = w.next(t)?.to_string();
            let inner = parse_signature(&s)?;
            let [inner] = inner.as_slice() else {
                return Err(usage(format!(
                    "variant signature '{s}' must be exactly one complete type"
                )));
            };
            Value::Value(Box::new(value(inner, w)?))
        }
        Ty::Array(elem) => {
            let n = count(t, w)?;
            let mut a = Array::new(&zsig(elem));
            for _ in 0..n {
                a.append(value(elem, w)?)
                    .map_err(|e| usage(format!("array element: {e}")))?;
            }
            Value::Array(a)
        }
        Ty::Dict(k, v) => {
            let n = count(t, w)?;
            let mut d = Dict::new(&zsig(k), &zsig(v));
            for _ in 0..n {
                let key = value(k, w)?;
                let val = value(v, w)?;
                d.append(key, val)
                    .map_err(|e| usage(format!("dict entry: {e}")))?;
            }
            Value::Dict(d)
        }
        Ty::Struct(fields) => {
            let mut b = StructureBuilder::new();
            for f in fields {
                b = b.append_field(value(f, w)?);
            }
            Value::Structure(b.build().map_err(|e| usage(format!("struct: {e}")))?)
        }
    })
}

fn count(t: &Ty, w: &mut Words<'_>) -> Result<u32> {
    let v = w.next(t)?.to_string();
    parse_int::<u32>(&v).ok_or_else(|| {
        usage(format!(
            "failed to parse number of array entries '{v}' (for '{t}')"
        ))
    })
}

/// Parses `args` for `signature` into one value per complete type of the
/// signature; extra words are an error ("too many parameters").
pub fn parse_args(signature: &str, args: &[String]) -> Result<Vec<Value<'static>>> {
    let types = parse_signature(signature)?;
    let mut w = Words {
        words: args,
        pos: 0,
    };
    let mut out = Vec::new();
    for t in &types {
        out.push(value(t, &mut w)?);
    }
    if w.pos < args.len() {
        return Err(usage(format!(
            "too many parameters for signature '{signature}': '{}' is left over",
            args[w.pos..].join(" ")
        )));
    }
    Ok(out)
}

/// The message body of `args`: a structure of all arguments (`None` for
/// no arguments).
pub fn body(args: Vec<Value<'static>>) -> Result<Option<zvariant::Structure<'static>>> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut b = StructureBuilder::new();
    for a in args {
        b = b.append_field(a);
    }
    b.build().map(Some).map_err(|e| usage(format!("body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn encoded(sig: &str, args: &str) -> (String, Vec<u8>) {
        let b = body(parse_args(sig, &w(args)).unwrap()).unwrap().unwrap();
        let m = kdbus_client::Message::signal("/a", "a.b", "C")
            .build(&b)
            .unwrap();
        (m.signature().to_string(), m.body_bytes().to_vec())
    }

    #[test]
    fn busctl_examples() {
        let v = parse_args("s", &w("hello")).unwrap();
        assert_eq!(v, vec![Value::from("hello")]);
        let v = parse_args("as", &w("3 a b c")).unwrap();
        let Value::Array(a) = &v[0] else { panic!() };
        assert_eq!(a.len(), 3);
        assert_eq!(a.element_signature().to_string(), "s");
        let v = parse_args("a{sv}", &w("1 key s val")).unwrap();
        let Value::Dict(d) = &v[0] else { panic!() };
        assert_eq!(d.signature().to_string(), "a{sv}");
        let (k, val) = d.iter().next().unwrap();
        assert_eq!(k, &Value::from("key"));
        assert_eq!(val, &Value::Value(Box::new(Value::from("val"))));
        let v = parse_args("(si)", &w("str 5")).unwrap();
        let Value::Structure(s) = &v[0] else { panic!() };
        assert_eq!(s.fields(), &[Value::from("str"), Value::I32(5)]);
        let v = parse_args("v", &w("s x")).unwrap();
        assert_eq!(v, vec![Value::Value(Box::new(Value::from("x")))]);
        let v = parse_args(
            "bynqiuxtdog",
            &w("yes 255 -3 7 -9 0x10 -1 18446744073709551615 2.5 /a/b a{sv}"),
        )
        .unwrap();
        assert_eq!(
            v,
            vec![
                Value::Bool(true),
                Value::U8(255),
                Value::I16(-3),
                Value::U16(7),
                Value::I32(-9),
                Value::U32(16),
                Value::I64(-1),
                Value::U64(u64::MAX),
                Value::F64(2.5),
                Value::ObjectPath(ObjectPath::try_from("/a/b").unwrap()),
                Value::Signature(Signature::try_from("a{sv}").unwrap()),
            ]
        );
        assert!(parse_args("", &[]).unwrap().is_empty());
        // Nested: an array of structs holding arrays, and a variant of an array.
        let v = parse_args("a(sas)", &w("2 x 1 y z 0")).unwrap();
        let Value::Array(a) = &v[0] else { panic!() };
        assert_eq!(a.len(), 2);
        let v = parse_args("v", &w("ai 2 1 2")).unwrap();
        let Value::Value(inner) = &v[0] else { panic!() };
        assert!(matches!(&**inner, Value::Array(a) if a.len() == 2));
        let v = parse_args("a{sv}", &w("0")).unwrap();
        assert!(matches!(&v[0], Value::Dict(_)));
    }

    #[test]
    fn bodies_encode_as_the_tuple() {
        // dbus-on-kdbus.md 9.1: body "hi" of signature "s".
        assert_eq!(encoded("s", "hi"), ("s".into(), b"hi\0".to_vec()));
        // 9.4: (sasua{sv}) = "ab", ["c","de"], 7, {"k": <uint32 5>}.
        let (sig, bytes) = encoded("sasua{sv}", "ab 2 c de 7 1 k u 5");
        assert_eq!(sig, "sasua{sv}");
        assert_eq!(
            bytes,
            [
                0x61, 0x62, 0x00, 0x63, 0x00, 0x64, 0x65, 0x00, 0x02, 0x05, 0x00, 0x00, 0x07, 0x00,
                0x00, 0x00, 0x6b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00,
                0x00, 0x75, 0x02, 0x0f, 0x0a, 0x03
            ]
        );
        // A struct argument stays one argument.
        assert_eq!(encoded("(si)", "str 5").0, "(si)");
        assert_eq!(encoded("si", "str 5").0, "si");
    }

    #[test]
    fn errors() {
        let e = |sig: &str, args: &str| parse_args(sig, &w(args)).unwrap_err().to_string();
        assert!(e("z", "1").contains("unknown type character 'z' at position 1"));
        assert!(e("a", "").contains("array without element type"));
        assert!(e("(si", "a 1").contains("unterminated '('"));
        assert!(e("a{vs}", "").contains("dict key must be a basic type"));
        assert!(e("a{sss}", "").contains("exactly two types"));
        assert!(e("{ss}", "").contains("dict entry outside an array"));
        assert!(e("s)", "a").contains("unbalanced"));
        assert!(e("()", "").contains("empty struct"));
        assert!(e("s", "").contains("too few parameters"));
        assert!(e("s", "a b").contains("too many parameters for signature 's': 'b'"));
        assert!(e("u", "-1").contains("failed to parse '-1' as a uint32 (u)"));
        assert!(e("y", "256").contains("as a byte"));
        assert!(e("b", "maybe").contains("as a boolean"));
        assert!(e("as", "x").contains("number of array entries 'x'"));
        assert!(e("as", "2 a").contains("too few parameters"));
        assert!(e("o", "rel/path").contains("invalid object path"));
        assert!(e("v", "ss a b").contains("exactly one complete type"));
        assert!(e("h", "0").contains("not supported"));
        assert!(e("g", "sa{sv}").contains("more than one complete type"));
        assert!(parse_signature(&"s".repeat(256)).is_err());
        let deep = format!("{}s{}", "(".repeat(70), ")".repeat(70));
        assert!(parse_signature(&deep).is_err());
        for s in ["s", "as", "a{sv}", "(si)", "a(sa{sv})", "aai", "v"] {
            let t = parse_signature(s).unwrap();
            assert_eq!(t.iter().map(|t| t.to_string()).collect::<String>(), s);
        }
    }
}
