//! Connections: HELLO, the pool mapping, BYEBYE and FREE (connection.md,
//! pool.md).

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, IntoRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::bus::open_rdwr;
use crate::{ioctl, uapi, CmdBuf, Errno, ItemIter, Mmap};

/// Opens an endpoint file (`O_RDWR | O_CLOEXEC`), yielding an unset handle.
pub fn open_endpoint(path: impl AsRef<Path>) -> Result<OwnedFd, Errno> {
    open_rdwr(path.as_ref())
}

/// The fields of `struct kdbus_cmd_hello` after a HELLO call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HelloReply {
    /// `flags` (rewritten by the kernel on negotiation).
    pub flags: u64,
    /// `return_flags` (always 0).
    pub return_flags: u64,
    /// `attach_flags_send` as sent.
    pub attach_flags_send: u64,
    /// `attach_flags_recv` as sent.
    pub attach_flags_recv: u64,
    /// The bus's BUS_MAKE flags.
    pub bus_flags: u64,
    /// The new connection's unique ID.
    pub id: u64,
    /// The pool size as sent.
    pub pool_size: u64,
    /// Pool offset of the HELLO result slice.
    pub offset: u64,
    /// Size of the HELLO result slice.
    pub items_size: u64,
    /// The bus UUID.
    pub id128: [u8; 16],
}

impl HelloReply {
    /// Decodes the fixed part of a HELLO command buffer.
    ///
    /// # Panics
    ///
    /// Panics if `cmd` is shorter than `struct kdbus_cmd_hello`.
    pub fn from_cmd(cmd: &CmdBuf) -> Self {
        let b = cmd.as_bytes();
        assert!(b.len() >= crate::CMD_HELLO_SIZE, "not a HELLO buffer");
        let mut id128 = [0; 16];
        id128.copy_from_slice(&b[80..96]);
        HelloReply {
            flags: cmd.u64_at(8),
            return_flags: cmd.u64_at(16),
            attach_flags_send: cmd.u64_at(24),
            attach_flags_recv: cmd.u64_at(32),
            bus_flags: cmd.u64_at(40),
            id: cmd.u64_at(48),
            pool_size: cmd.u64_at(56),
            offset: cmd.u64_at(64),
            items_size: cmd.u64_at(72),
            id128,
        }
    }
}

/// A connected handle with its pool mapped read-only.
///
/// Dropping it unmaps the pool and then closes the descriptor, which
/// disconnects the connection (the mapping would otherwise keep the file
/// alive).
#[derive(Debug)]
pub struct Connection {
    // Field order matters: the pool must be unmapped before the fd closes.
    pool: Mmap,
    fd: OwnedFd,
    hello: HelloReply,
}

impl Connection {
    /// The HELLO command for the given input fields, without items.
    pub fn hello_cmd(
        flags: u64,
        attach_flags_send: u64,
        attach_flags_recv: u64,
        pool_size: u64,
    ) -> CmdBuf {
        CmdBuf::hello(flags, attach_flags_send, attach_flags_recv, pool_size)
    }

    /// Opens `endpoint`, issues HELLO and maps the pool
    /// (`mmap(NULL, pool_size, PROT_READ, MAP_SHARED, fd, 0)`).
    pub fn hello(
        endpoint: impl AsRef<Path>,
        flags: u64,
        attach_flags_send: u64,
        attach_flags_recv: u64,
        pool_size: u64,
    ) -> Result<Self, Errno> {
        let fd = open_endpoint(endpoint)?;
        let mut cmd = Self::hello_cmd(flags, attach_flags_send, attach_flags_recv, pool_size);
        Self::from_hello(fd, &mut cmd)
    }

    /// Issues the HELLO command `cmd` (any items) on the unset handle `fd`
    /// and maps the pool. The kernel's answer stays readable in `cmd`.
    pub fn from_hello(fd: OwnedFd, cmd: &mut CmdBuf) -> Result<Self, Errno> {
        ioctl(&fd, uapi::KDBUS_CMD_HELLO, cmd.words_mut())?;
        let hello = HelloReply::from_cmd(cmd);
        let len = usize::try_from(hello.pool_size).map_err(|_| Errno::EOVERFLOW)?;
        let pool = Mmap::map_readonly(&fd, len)?;
        Ok(Connection { pool, fd, hello })
    }

    /// The HELLO result.
    pub fn hello_reply(&self) -> &HelloReply {
        &self.hello
    }

    /// The unique connection ID.
    pub fn id(&self) -> u64 {
        self.hello.id
    }

    /// The bus's creation flags.
    pub fn bus_flags(&self) -> u64 {
        self.hello.bus_flags
    }

    /// The bus UUID.
    pub fn id128(&self) -> [u8; 16] {
        self.hello.id128
    }

    /// The pool size.
    pub fn pool_size(&self) -> u64 {
        self.hello.pool_size
    }

    /// The read-only pool mapping.
    pub fn pool(&self) -> &Mmap {
        &self.pool
    }

    /// `len` bytes of the pool at `offset` (`None` if out of range).
    pub fn pool_bytes(&self, offset: u64, len: u64) -> Option<&[u8]> {
        self.pool
            .bytes(usize::try_from(offset).ok()?, usize::try_from(len).ok()?)
    }

    /// The item stream of `len` bytes at pool `offset` (e.g. the HELLO slice
    /// at `hello_reply().offset` / `items_size`).
    pub fn pool_items(&self, offset: u64, len: u64) -> Option<ItemIter<'_>> {
        self.pool_bytes(offset, len).map(ItemIter::new)
    }

    /// KDBUS_CMD_BYEBYE.
    pub fn byebye(&self) -> Result<(), Errno> {
        ioctl(&self.fd, uapi::KDBUS_CMD_BYEBYE, CmdBuf::cmd(0).words_mut())
    }

    /// KDBUS_CMD_FREE of the slice at `offset`.
    pub fn free(&self, offset: u64) -> Result<(), Errno> {
        ioctl(
            &self.fd,
            uapi::KDBUS_CMD_FREE,
            CmdBuf::free(offset).words_mut(),
        )
    }

    /// Issues any ioctl on the connection with the buffer of `cmd`.
    pub fn ioctl(&self, request: uapi::kdbus_ioctl_type, cmd: &mut CmdBuf) -> Result<(), Errno> {
        ioctl(&self.fd, request, cmd.words_mut())
    }

    /// Unmaps the pool and closes the descriptor, reporting `close()`'s
    /// errno.
    pub fn close(self) -> Result<(), Errno> {
        let Connection { pool, fd, .. } = self;
        drop(pool);
        nix::unistd::close(fd.into_raw_fd())
    }

    /// Unmaps the pool and returns the descriptor.
    pub fn into_fd(self) -> OwnedFd {
        let Connection { pool, fd, .. } = self;
        drop(pool);
        fd
    }
}

impl AsFd for Connection {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for Connection {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_reply_decoding() {
        let mut c = Connection::hello_cmd(1, 2, 3, 8192);
        c.set_u64(40, 7);
        c.set_u64(48, 42);
        c.set_u64(64, 0x100);
        c.set_u64(72, 32);
        c.as_bytes_mut()[80..96].copy_from_slice(&[9; 16]);
        let h = HelloReply::from_cmd(&c);
        assert_eq!(
            h,
            HelloReply {
                flags: 1,
                return_flags: 0,
                attach_flags_send: 2,
                attach_flags_recv: 3,
                bus_flags: 7,
                id: 42,
                pool_size: 8192,
                offset: 0x100,
                items_size: 32,
                id128: [9; 16],
            }
        );
    }

    #[test]
    fn hello_on_missing_endpoint() {
        let e = Connection::hello("/nonexistent/bus", 0, 0, 0, 4096).unwrap_err();
        assert_eq!(e, Errno::ENOENT);
    }
}
