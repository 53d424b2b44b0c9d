// SPDX-License-Identifier: GPL-2.0

//! Conversions between the protocol's [`Errno`] and the kernel crate's error
//! types, used at the FFI boundary.

use crate::proto::errno::{Errno, ENOMEM};
use kernel::alloc::AllocError;
use kernel::error::Error;

impl From<Errno> for Error {
    fn from(e: Errno) -> Error {
        Error::from_errno(-e.0)
    }
}

impl From<Error> for Errno {
    fn from(e: Error) -> Errno {
        Errno(-e.to_errno())
    }
}

impl From<AllocError> for Errno {
    fn from(_: AllocError) -> Errno {
        ENOMEM
    }
}

/// A negative return value of a kernel function as a result.
pub(super) fn check(ret: core::ffi::c_int) -> crate::proto::errno::Result<core::ffi::c_int> {
    if ret < 0 {
        Err(Errno(-ret))
    } else {
        Ok(ret)
    }
}

/// A protocol result as the `long` an ioctl handler returns.
pub(super) fn to_ret(r: crate::proto::errno::Result) -> isize {
    match r {
        Ok(()) => 0,
        Err(e) => -(e.0 as isize),
    }
}
