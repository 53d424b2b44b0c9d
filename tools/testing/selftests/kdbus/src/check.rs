//! Assertion helpers. A test returns `Err(message)` on failure; messages
//! say what was expected and what happened.

use std::fmt::Display;
use std::fs::Metadata;
use std::path::Path;

use kdbus::{Errno, PollFlags};

/// The result of one test.
pub type TestResult = Result<(), String>;

/// Marker that turns an `Err` into a skip (see [`skip`]).
const SKIP_MARKER: &str = "\u{1}SKIP\u{1}";

/// Ends the test as skipped with `reason` (never counted as passed).
pub fn skip(reason: impl Display) -> TestResult {
    Err(format!("{SKIP_MARKER}{reason}"))
}

/// The skip reason, if `msg` was produced by [`skip`].
pub fn skip_reason(msg: &str) -> Option<&str> {
    msg.strip_prefix(SKIP_MARKER)
}

/// `EINVAL (22)`.
pub fn errno_name(e: Errno) -> String {
    format!("{e:?} ({})", e as i32)
}

/// Succeeds iff `res` failed with exactly `want`.
pub fn expect_errno<T>(what: &str, res: Result<T, Errno>, want: Errno) -> TestResult {
    match res {
        Err(e) if e == want => Ok(()),
        Err(e) => Err(format!(
            "{what}: expected {}, got {}",
            errno_name(want),
            errno_name(e)
        )),
        Ok(_) => Err(format!(
            "{what}: expected {}, got success",
            errno_name(want)
        )),
    }
}

/// Unwraps `res`, turning an errno into a failure message.
pub fn expect_ok<T>(what: &str, res: Result<T, Errno>) -> Result<T, String> {
    res.map_err(|e| format!("{what}: expected success, got {}", errno_name(e)))
}

/// `stat()` (following symlinks) returning the errno.
pub fn stat(path: &Path) -> Result<Metadata, Errno> {
    std::fs::metadata(path).map_err(io_errno)
}

/// The errno inside an `io::Error` (`EIO` if there is none).
pub fn io_errno(e: std::io::Error) -> Errno {
    e.raw_os_error().map(Errno::from_raw).unwrap_or(Errno::EIO)
}

/// Fails if `path` exists (with a message naming `why`).
pub fn expect_absent(path: &Path, why: &str) -> TestResult {
    match stat(path) {
        Err(Errno::ENOENT) => Ok(()),
        Err(e) => Err(format!(
            "{why}: stat {} expected ENOENT, got {}",
            path.display(),
            errno_name(e)
        )),
        Ok(_) => Err(format!("{why}: {} exists", path.display())),
    }
}

/// Fails unless `path` exists.
pub fn expect_present(path: &Path, why: &str) -> Result<Metadata, String> {
    stat(path).map_err(|e| {
        format!(
            "{why}: stat {} failed with {}",
            path.display(),
            errno_name(e)
        )
    })
}

/// Fails unless every flag in `want` is set and none in `deny` is.
pub fn expect_poll(what: &str, got: PollFlags, want: PollFlags, deny: PollFlags) -> TestResult {
    if got.contains(want) && !got.intersects(deny) {
        Ok(())
    } else {
        Err(format!(
            "{what}: expected revents to contain {want:?} and none of {deny:?}, got {got:?}"
        ))
    }
}

/// Prints a TAP diagnostic line.
pub fn diag(msg: impl Display) {
    for line in msg.to_string().lines() {
        println!("# {line}");
    }
}

/// `ensure!(cond, "fmt", args..)`: fails the test with the message unless
/// `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($arg:tt)+) => {
        if !($cond) {
            return Err(format!($($arg)+));
        }
    };
}

/// `ensure_eq!(got, want, "what", args..)`: fails with
/// "what: expected W, got G" unless `got == want`.
#[macro_export]
macro_rules! ensure_eq {
    ($got:expr, $want:expr, $($arg:tt)+) => {{
        let got = $got;
        let want = $want;
        if got != want {
            return Err(format!(
                "{}: expected {:?}, got {:?}",
                format!($($arg)+),
                want,
                got
            ));
        }
    }};
}

/// Like `ensure_eq!` but prints both values in hex.
#[macro_export]
macro_rules! ensure_eq_hex {
    ($got:expr, $want:expr, $($arg:tt)+) => {{
        let got: u64 = $got;
        let want: u64 = $want;
        if got != want {
            return Err(format!(
                "{}: expected {:#x}, got {:#x}",
                format!($($arg)+),
                want,
                got
            ));
        }
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skip_roundtrip() {
        let e = skip("no root").unwrap_err();
        assert_eq!(skip_reason(&e), Some("no root"));
        assert_eq!(skip_reason("plain failure"), None);
    }

    #[test]
    fn errno_messages() {
        assert!(expect_errno("x", Err::<(), _>(Errno::EINVAL), Errno::EINVAL).is_ok());
        let m = expect_errno("x", Err::<(), _>(Errno::ENOTTY), Errno::EINVAL).unwrap_err();
        assert_eq!(m, "x: expected EINVAL (22), got ENOTTY (25)");
        let m = expect_errno("y", Ok(()), Errno::EBADFD).unwrap_err();
        assert_eq!(m, "y: expected EBADFD (77), got success");
        assert_eq!(expect_ok("z", Ok::<_, Errno>(3)), Ok(3));
    }

    fn uses_macros(a: u64, b: u64) -> TestResult {
        ensure!(a < 100, "a too big: {a}");
        ensure_eq!(a, b, "a vs b");
        ensure_eq_hex!(a, b, "hex");
        Ok(())
    }

    #[test]
    fn macros() {
        assert!(uses_macros(3, 3).is_ok());
        assert_eq!(uses_macros(300, 3).unwrap_err(), "a too big: 300");
        assert_eq!(uses_macros(3, 4).unwrap_err(), "a vs b: expected 4, got 3");
    }
}
