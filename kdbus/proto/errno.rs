// SPDX-License-Identifier: GPL-2.0

//! Error numbers of the kdbus ABI.
//!
//! Pure: used by the protocol logic, which is compiled both into the module
//! and into the userspace `kdbus-proto` crate for property tests. The module
//! converts an [`Errno`] into a `kernel::error::Error` at the FFI boundary.

/// A positive errno value, as the ABI reports it to userspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Errno(pub i32);

/// Result type of the protocol logic.
pub type Result<T = ()> = core::result::Result<T, Errno>;

macro_rules! errnos {
    ($($name:ident = $val:expr;)*) => {
        $(
            #[doc = concat!("`", stringify!($name), "`")]
            pub const $name: Errno = Errno($val);
        )*
    };
}

errnos! {
    EPERM = 1;
    ENOENT = 2;
    ESRCH = 3;
    EINTR = 4;
    ENXIO = 6;
    E2BIG = 7;
    EBADF = 9;
    EAGAIN = 11;
    ENOMEM = 12;
    EFAULT = 14;
    EBUSY = 16;
    EEXIST = 17;
    EINVAL = 22;
    EMFILE = 24;
    ENOTTY = 25;
    EPIPE = 32;
    EMLINK = 31;
    ENAMETOOLONG = 36;
    EXFULL = 54;
    EBADSLT = 57;
    EOVERFLOW = 75;
    EBADFD = 77;
    EMSGSIZE = 90;
    EOPNOTSUPP = 95;
    ECONNRESET = 104;
    ENOBUFS = 105;
    ESHUTDOWN = 108;
    ETIMEDOUT = 110;
    ECANCELED = 125;
    ETXTBSY = 26;
    EDOM = 33;
    ECOMM = 70;
    EBADMSG = 74;
    ENOTUNIQ = 76;
    EREMCHG = 78;
    EDESTADDRREQ = 89;
    EADDRINUSE = 98;
    EADDRNOTAVAIL = 99;
    EREMOTEIO = 121;
    EMEDIUMTYPE = 124;
    ERESTARTSYS = 512;
}
