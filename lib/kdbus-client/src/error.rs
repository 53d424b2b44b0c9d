//! Errors as D-Bus error names (dbus-on-kdbus.md 4.4, 5.2, 7).

use core::fmt;

use kdbus::Errno;

/// Well-known D-Bus error names.
pub mod names {
    /// `org.freedesktop.DBus.Error.Failed`.
    pub const FAILED: &str = "org.freedesktop.DBus.Error.Failed";
    /// `org.freedesktop.DBus.Error.ServiceUnknown`: the destination has no owner.
    pub const SERVICE_UNKNOWN: &str = "org.freedesktop.DBus.Error.ServiceUnknown";
    /// `org.freedesktop.DBus.Error.NoReply`: the call timed out or the peer died.
    pub const NO_REPLY: &str = "org.freedesktop.DBus.Error.NoReply";
    /// `org.freedesktop.DBus.Error.Timeout`: a synchronous call timed out.
    pub const TIMEOUT: &str = "org.freedesktop.DBus.Error.Timeout";
    /// `org.freedesktop.DBus.Error.AccessDenied`.
    pub const ACCESS_DENIED: &str = "org.freedesktop.DBus.Error.AccessDenied";
    /// `org.freedesktop.DBus.Error.NameHasNoOwner`.
    pub const NAME_HAS_NO_OWNER: &str = "org.freedesktop.DBus.Error.NameHasNoOwner";
    /// `org.freedesktop.DBus.Error.InvalidArgs`.
    pub const INVALID_ARGS: &str = "org.freedesktop.DBus.Error.InvalidArgs";
    /// `org.freedesktop.DBus.Error.NoMemory`.
    pub const NO_MEMORY: &str = "org.freedesktop.DBus.Error.NoMemory";
    /// `org.freedesktop.DBus.Error.NotSupported`.
    pub const NOT_SUPPORTED: &str = "org.freedesktop.DBus.Error.NotSupported";
    /// `org.freedesktop.DBus.Error.FileNotFound`.
    pub const FILE_NOT_FOUND: &str = "org.freedesktop.DBus.Error.FileNotFound";
    /// `org.freedesktop.DBus.Error.FileExists`.
    pub const FILE_EXISTS: &str = "org.freedesktop.DBus.Error.FileExists";
    /// `org.freedesktop.DBus.Error.UnixProcessIdUnknown`.
    pub const UNIX_PROCESS_ID_UNKNOWN: &str = "org.freedesktop.DBus.Error.UnixProcessIdUnknown";
    /// `org.freedesktop.DBus.Error.LimitsExceeded`.
    pub const LIMITS_EXCEEDED: &str = "org.freedesktop.DBus.Error.LimitsExceeded";
    /// `org.freedesktop.DBus.Error.AddressInUse`.
    pub const ADDRESS_IN_USE: &str = "org.freedesktop.DBus.Error.AddressInUse";
    /// `org.freedesktop.DBus.Error.Disconnected`.
    pub const DISCONNECTED: &str = "org.freedesktop.DBus.Error.Disconnected";
    /// `org.freedesktop.DBus.Error.InconsistentMessage`.
    pub const INCONSISTENT_MESSAGE: &str = "org.freedesktop.DBus.Error.InconsistentMessage";
    /// `org.freedesktop.DBus.Error.UnknownMethod`.
    pub const UNKNOWN_METHOD: &str = "org.freedesktop.DBus.Error.UnknownMethod";
    /// `org.freedesktop.DBus.Error.UnknownObject`.
    pub const UNKNOWN_OBJECT: &str = "org.freedesktop.DBus.Error.UnknownObject";
    /// `org.freedesktop.DBus.Error.UnknownInterface`.
    pub const UNKNOWN_INTERFACE: &str = "org.freedesktop.DBus.Error.UnknownInterface";
    /// `org.freedesktop.DBus.Error.MatchRuleInvalid`.
    pub const MATCH_RULE_INVALID: &str = "org.freedesktop.DBus.Error.MatchRuleInvalid";
    /// `org.freedesktop.DBus.Error.MatchRuleNotFound`.
    pub const MATCH_RULE_NOT_FOUND: &str = "org.freedesktop.DBus.Error.MatchRuleNotFound";
    /// `org.freedesktop.DBus.Error.BadAddress`.
    pub const BAD_ADDRESS: &str = "org.freedesktop.DBus.Error.BadAddress";
}

/// The error type of this crate. Every error has a D-Bus error name
/// ([`Error::name`]) and a human-readable message ([`Error::message`]).
#[derive(Debug)]
pub enum Error {
    /// A D-Bus error: an error reply from a peer, a reply synthesized from
    /// a kernel notification (`NoReply`), or a kernel errno mapped to its
    /// D-Bus name (`ServiceUnknown`, `Timeout`, `AccessDenied`, ...).
    MethodError {
        /// The error name.
        name: String,
        /// The message (first string argument of an error reply).
        message: Option<String>,
        /// The errno it came from, if it came from the kernel.
        errno: Option<Errno>,
    },
    /// A kernel errno without a more specific meaning; its D-Bus name is
    /// from sd-bus's table (`errno_to_bus_error_const`).
    Errno(Errno),
    /// (De)serialization through zvariant failed, e.g. a body signature
    /// that does not match the requested type.
    Variant(zvariant::Error),
    /// A malformed D-Bus message.
    Wire(crate::wire::WireError),
    /// A malformed match rule string.
    InvalidMatchRule(String),
    /// A malformed or unsupported bus address.
    InvalidAddress(String),
    /// An invalid bus name, object path, interface or member.
    InvalidName(String),
    /// The connection was closed by the kernel (`ECONNRESET` on our own
    /// connection, `EPIPE`... on RECV) or the bus went away.
    Disconnected,
}

/// The crate's result type.
pub type Result<T> = core::result::Result<T, Error>;

impl Error {
    /// A D-Bus error with a name and a message.
    pub fn method(name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::MethodError {
            name: name.into(),
            message: Some(message.into()),
            errno: None,
        }
    }

    fn kernel(name: &str, message: String, errno: Errno) -> Self {
        Error::MethodError {
            name: name.into(),
            message: Some(message),
            errno: Some(errno),
        }
    }

    /// The D-Bus error name.
    pub fn name(&self) -> String {
        match self {
            Error::MethodError { name, .. } => name.clone(),
            Error::Errno(e) => errno_name(*e),
            Error::Variant(_) => names::INVALID_ARGS.into(),
            Error::Wire(_) => names::INCONSISTENT_MESSAGE.into(),
            Error::InvalidMatchRule(_) => names::MATCH_RULE_INVALID.into(),
            Error::InvalidAddress(_) => names::BAD_ADDRESS.into(),
            Error::InvalidName(_) => names::INVALID_ARGS.into(),
            Error::Disconnected => names::DISCONNECTED.into(),
        }
    }

    /// The human-readable message.
    pub fn message(&self) -> Option<String> {
        match self {
            Error::MethodError { message, .. } => message.clone(),
            Error::Errno(e) => Some(e.desc().into()),
            Error::Variant(e) => Some(e.to_string()),
            Error::Wire(e) => Some(e.to_string()),
            Error::InvalidMatchRule(m) | Error::InvalidAddress(m) | Error::InvalidName(m) => {
                Some(m.clone())
            }
            Error::Disconnected => Some("Connection terminated".into()),
        }
    }

    /// The kernel errno behind this error, if any.
    pub fn errno(&self) -> Option<Errno> {
        match self {
            Error::MethodError { errno, .. } => *errno,
            Error::Errno(e) => Some(*e),
            _ => None,
        }
    }

    /// Whether this is the D-Bus error `name`.
    pub fn is(&self, name: &str) -> bool {
        self.name() == name
    }

    /// The error of a failed SEND of a message of `msg_type` to
    /// `destination` (dbus-on-kdbus.md 4.4, with its recommendation for
    /// `EPIPE`/`ECONNRESET`): for method calls `ENXIO`/`ESRCH` become
    /// `ServiceUnknown` "Destination <d> not known", `EADDRNOTAVAIL`
    /// `ServiceUnknown` "Activation of <d> not requested", `ETIMEDOUT`
    /// `Timeout` "Timed out", `EPIPE`/`ECONNRESET` `NoReply`; everything
    /// else goes through [`Error::from_errno`].
    pub fn from_send_errno(e: Errno, is_call: bool, destination: Option<&str>) -> Self {
        let d = destination.unwrap_or("(broadcast)");
        match e {
            Errno::ENXIO | Errno::ESRCH if is_call => Self::kernel(
                names::SERVICE_UNKNOWN,
                format!("Destination {d} not known"),
                e,
            ),
            Errno::EADDRNOTAVAIL if is_call => Self::kernel(
                names::SERVICE_UNKNOWN,
                format!("Activation of {d} not requested"),
                e,
            ),
            Errno::ETIMEDOUT if is_call => Self::kernel(names::TIMEOUT, "Timed out".into(), e),
            Errno::EPIPE if is_call => {
                Self::kernel(names::NO_REPLY, "Method call peer died".into(), e)
            }
            Errno::ECONNRESET if is_call => {
                Self::kernel(names::NO_REPLY, format!("Destination {d} disconnected"), e)
            }
            _ => Self::from_errno(e),
        }
    }

    /// An errno as a D-Bus error (sd-bus's table, dbus-on-kdbus.md 7).
    pub fn from_errno(e: Errno) -> Self {
        match errno_table(e) {
            Some(name) => Self::kernel(name, e.desc().into(), e),
            None => Error::Errno(e),
        }
    }
}

fn errno_table(e: Errno) -> Option<&'static str> {
    Some(match e {
        Errno::EPERM | Errno::EACCES => names::ACCESS_DENIED,
        Errno::EINVAL => names::INVALID_ARGS,
        Errno::ENOMEM => names::NO_MEMORY,
        Errno::EOPNOTSUPP => names::NOT_SUPPORTED,
        Errno::ENOENT => names::FILE_NOT_FOUND,
        Errno::EEXIST => names::FILE_EXISTS,
        Errno::ESRCH => names::UNIX_PROCESS_ID_UNKNOWN,
        Errno::ETIMEDOUT => names::TIMEOUT,
        Errno::ENOBUFS => names::LIMITS_EXCEEDED,
        Errno::EADDRINUSE => names::ADDRESS_IN_USE,
        Errno::ECONNRESET => names::DISCONNECTED,
        Errno::EBADMSG => names::INCONSISTENT_MESSAGE,
        _ => return None,
    })
}

/// The D-Bus name sd-bus gives an errno: its table entry, else
/// `System.Error.<ERRNO-NAME>`.
pub fn errno_name(e: Errno) -> String {
    match errno_table(e) {
        Some(n) => n.into(),
        None => format!("System.Error.{e:?}"),
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.message() {
            Some(m) => write!(f, "{}: {m}", self.name()),
            None => f.write_str(&self.name()),
        }
    }
}

impl std::error::Error for Error {}

impl From<Errno> for Error {
    fn from(e: Errno) -> Self {
        Error::from_errno(e)
    }
}

impl From<zvariant::Error> for Error {
    fn from(e: zvariant::Error) -> Self {
        Error::Variant(e)
    }
}

impl From<crate::wire::WireError> for Error {
    fn from(e: crate::wire::WireError) -> Self {
        Error::Wire(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn send_errnos() {
        let e = Error::from_send_errno(Errno::ESRCH, true, Some("org.example.Echo"));
        assert_eq!(e.name(), names::SERVICE_UNKNOWN);
        assert_eq!(
            e.message().unwrap(),
            "Destination org.example.Echo not known"
        );
        assert_eq!(e.errno(), Some(Errno::ESRCH));
        let e = Error::from_send_errno(Errno::ENXIO, true, Some(":1.9"));
        assert_eq!(e.name(), names::SERVICE_UNKNOWN);
        let e = Error::from_send_errno(Errno::EADDRNOTAVAIL, true, Some("a.b"));
        assert_eq!(e.message().unwrap(), "Activation of a.b not requested");
        assert!(Error::from_send_errno(Errno::ETIMEDOUT, true, None).is(names::TIMEOUT));
        assert!(Error::from_send_errno(Errno::EPIPE, true, None).is(names::NO_REPLY));
        assert!(Error::from_send_errno(Errno::ECONNRESET, true, None).is(names::NO_REPLY));
        assert!(Error::from_send_errno(Errno::EPERM, true, None).is(names::ACCESS_DENIED));
        // Not a call: the generic table.
        assert!(
            Error::from_send_errno(Errno::ESRCH, false, None).is(names::UNIX_PROCESS_ID_UNKNOWN)
        );
    }

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(Errno::EACCES), names::ACCESS_DENIED);
        assert_eq!(errno_name(Errno::ENOBUFS), names::LIMITS_EXCEEDED);
        assert_eq!(errno_name(Errno::EXFULL), "System.Error.EXFULL");
        let e = Error::from(Errno::EMLINK);
        assert_eq!(e.name(), "System.Error.EMLINK");
        assert_eq!(
            e.to_string(),
            format!("System.Error.EMLINK: {}", Errno::EMLINK.desc())
        );
    }
}
