// SPDX-License-Identifier: GPL-2.0

//! Name rules: well-known names (spec: names.md 2) and the `<uid>-` prefix of
//! bus and endpoint names (bus.md 2, endpoint.md). Pure.

use crate::proto::errno::{Result, EINVAL};
use crate::proto::limits::NAME_MAX_LEN;

/// Whether `name` is a valid well-known name; with `allow_wildcard`, its last
/// element may be exactly `*`.
pub fn is_valid_well_known(name: &[u8], allow_wildcard: bool) -> bool {
    if name.is_empty() || name.len() > NAME_MAX_LEN {
        return false;
    }
    let mut elements = 0usize;
    let mut parts = name.split(|&c| c == b'.').peekable();
    while let Some(part) = parts.next() {
        let last = parts.peek().is_none();
        elements += 1;
        if allow_wildcard && last && elements >= 2 && part == b"*" {
            continue;
        }
        let Some(&first) = part.first() else {
            return false;
        };
        if first.is_ascii_digit() {
            return false;
        }
        if !part
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'-')
        {
            return false;
        }
    }
    elements >= 2
}

/// Checks that `name` starts with the decimal `uid` followed by `-`.
pub fn check_uid_prefix(name: &[u8], uid: u32) -> Result {
    // u32::MAX has 10 digits.
    let mut digits = [0u8; 10];
    let mut n = uid;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let prefix = &digits[i..];
    match name.strip_prefix(prefix) {
        Some(rest) if rest.first() == Some(&b'-') => Ok(()),
        _ => Err(EINVAL),
    }
}
