//! Errors and exit codes a script can use.

use core::fmt;

use kdbus::Errno;
use kdbus_client::error::names;

/// Exit code: success.
pub const EXIT_OK: i32 = 0;
/// Exit code: a D-Bus error reply or any other failure.
pub const EXIT_FAILURE: i32 = 1;
/// Exit code: bad usage (arguments, signatures, names, match rules).
pub const EXIT_USAGE: i32 = 2;
/// Exit code: the bus (kdbusfs, bus or endpoint file) does not exist.
pub const EXIT_NO_BUS: i32 = 3;
/// Exit code: the name has no owner / the service is unknown.
pub const EXIT_NO_OWNER: i32 = 4;
/// Exit code: permission denied.
pub const EXIT_PERMISSION: i32 = 5;
/// Exit code: a timeout or no reply.
pub const EXIT_TIMEOUT: i32 = 6;

/// What went wrong, with its exit code.
#[derive(Debug)]
pub enum CtlError {
    /// Bad usage: exit 2.
    Usage(String),
    /// The bus is not there: exit 3.
    NoBus(String),
    /// No owner: exit 4.
    NoOwner(String),
    /// Permission denied: exit 5.
    Permission(String),
    /// Timeout / no reply: exit 6.
    Timeout(String),
    /// Anything else: exit 1.
    Failure(String),
}

/// The crate's result type.
pub type Result<T> = core::result::Result<T, CtlError>;

impl CtlError {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            CtlError::Usage(_) => EXIT_USAGE,
            CtlError::NoBus(_) => EXIT_NO_BUS,
            CtlError::NoOwner(_) => EXIT_NO_OWNER,
            CtlError::Permission(_) => EXIT_PERMISSION,
            CtlError::Timeout(_) => EXIT_TIMEOUT,
            CtlError::Failure(_) => EXIT_FAILURE,
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            CtlError::Usage(m)
            | CtlError::NoBus(m)
            | CtlError::NoOwner(m)
            | CtlError::Permission(m)
            | CtlError::Timeout(m)
            | CtlError::Failure(m) => m,
        }
    }

    /// A failed kernel operation `what` with `e`, classified by errno.
    pub fn errno(what: &str, e: Errno) -> Self {
        let m = format!("{what}: {}", errno_text(e));
        match e {
            Errno::EPERM | Errno::EACCES => CtlError::Permission(m),
            Errno::ENOENT => CtlError::NoBus(m),
            Errno::ESRCH | Errno::ENXIO | Errno::EADDRNOTAVAIL => CtlError::NoOwner(m),
            Errno::ETIMEDOUT => CtlError::Timeout(m),
            Errno::EINVAL | Errno::ENAMETOOLONG => CtlError::Usage(m),
            _ => CtlError::Failure(m),
        }
    }

    /// A kdbus-client error while doing `what`, classified by its D-Bus
    /// name / errno.
    pub fn client(what: &str, e: &kdbus_client::Error) -> Self {
        let name = e.name();
        let text = match (e.message(), e.errno()) {
            (Some(m), Some(er)) => format!("{what}: {name}: {m} ({})", errno_name(er)),
            (Some(m), None) => format!("{what}: {name}: {m}"),
            (None, _) => format!("{what}: {name}"),
        };
        match e {
            kdbus_client::Error::InvalidMatchRule(_) | kdbus_client::Error::InvalidName(_) => {
                return CtlError::Usage(text)
            }
            kdbus_client::Error::InvalidAddress(_) => return CtlError::Usage(text),
            _ => {}
        }
        match name.as_str() {
            names::SERVICE_UNKNOWN | names::NAME_HAS_NO_OWNER => CtlError::NoOwner(text),
            names::ACCESS_DENIED => CtlError::Permission(text),
            names::TIMEOUT | names::NO_REPLY => CtlError::Timeout(text),
            _ => match e.errno() {
                Some(Errno::ENOENT) => CtlError::NoBus(text),
                _ => CtlError::Failure(text),
            },
        }
    }
}

impl fmt::Display for CtlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

/// `ENOENT`, `EPERM`, ... (nix's names).
pub fn errno_name(e: Errno) -> String {
    format!("{e:?}")
}

/// "No such file or directory (ENOENT)".
pub fn errno_text(e: Errno) -> String {
    format!("{} ({})", e.desc(), errno_name(e))
}

/// A usage error.
pub fn usage(m: impl Into<String>) -> CtlError {
    CtlError::Usage(m.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let e = CtlError::errno("cannot open /x", Errno::ENOENT);
        assert_eq!(e.exit_code(), EXIT_NO_BUS);
        assert_eq!(
            e.message(),
            "cannot open /x: No such file or directory (ENOENT)"
        );
        assert_eq!(
            CtlError::errno("x", Errno::EPERM).exit_code(),
            EXIT_PERMISSION
        );
        assert_eq!(
            CtlError::errno("x", Errno::ESRCH).exit_code(),
            EXIT_NO_OWNER
        );
        let ce = kdbus_client::Error::from_send_errno(Errno::ESRCH, true, Some("a.b"));
        let e = CtlError::client("call failed", &ce);
        assert_eq!(e.exit_code(), EXIT_NO_OWNER);
        assert!(e.message().contains("Destination a.b not known (ESRCH)"));
        let ce = kdbus_client::Error::method("org.example.Error.Bad", "bad");
        assert_eq!(CtlError::client("x", &ce).exit_code(), EXIT_FAILURE);
        let ce = kdbus_client::MatchRule::parse("type='x'").unwrap_err();
        assert_eq!(CtlError::client("x", &ce).exit_code(), EXIT_USAGE);
    }
}
