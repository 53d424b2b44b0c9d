//! The async API on tokio (feature `tokio`): the connection's descriptor
//! registered with the reactor through [`tokio::io::unix::AsyncFd`]
//! (readable = a message or a lost count is waiting). Whichever task is
//! woken drains the kernel queue and hands replies and messages to their
//! waiters; no thread per message, no polling loop.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::Notify;
use zvariant::DynamicType;

use crate::kmsg;
use crate::{Connection, Error, Message, Result};

struct Fd(RawFd);

fn io_error(e: std::io::Error) -> Error {
    Error::from_errno(kdbus::Errno::from_raw(
        e.raw_os_error().unwrap_or(libc::EIO),
    ))
}

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// An async connection. Cheap to clone (an `Arc`); derefs to the blocking
/// [`Connection`] for the non-blocking operations (names, matches,
/// `send`, `emit_signal`, `reply`). Do not use the blocking waits
/// (`call`, `receive`, `wait_reply`) on it from async code.
///
/// ```no_run
/// # async fn demo() -> kdbus_client::Result<()> {
/// use kdbus_client::{AsyncConnection, Connection, Message};
/// let conn = AsyncConnection::new(Connection::system()?)?;
/// let call = Message::method_call("/org/example/Echo", "Echo")
///     .destination("org.example.Echo")
///     .interface("org.example.Echo")
///     .build(&("hi",))?;
/// let reply: String = conn.call(&call).await?.body()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct AsyncConnection {
    inner: Arc<Inner>,
}

struct Inner {
    // Dropped before the connection (field order): the reactor
    // deregisters the descriptor while it is still open.
    afd: AsyncFd<Fd>,
    notify: Notify,
    conn: Connection,
}

impl core::ops::Deref for AsyncConnection {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        &self.inner.conn
    }
}

impl AsyncConnection {
    /// Wraps `conn`; must be called inside a tokio runtime.
    pub fn new(conn: Connection) -> Result<Self> {
        // SAFETY: the descriptor belongs to `conn`, which is stored next to
        // the `AsyncFd` in `Inner` and dropped after it (field order), so it
        // stays open and the same for the `AsyncFd`'s whole life.
        let afd =
            unsafe { AsyncFd::register_with_interest(Fd(conn.as_raw_fd()), Interest::READABLE) }
                .map_err(|e| io_error(e.into_parts().1))?;
        Ok(AsyncConnection {
            inner: Arc::new(Inner {
                afd,
                notify: Notify::new(),
                conn,
            }),
        })
    }

    /// Waits for readiness, drains, and wakes the other waiters.
    async fn pump(&self) -> Result<()> {
        let mut guard = self.inner.afd.readable().await.map_err(io_error)?;
        let n = self.inner.conn.drain();
        // drain() stops at EAGAIN: the readiness can be cleared (a message
        // arriving since sets it again).
        guard.clear_ready();
        let n = n?;
        if n > 0 {
            self.inner.notify.notify_waiters();
        }
        Ok(())
    }

    async fn wait_for<T>(
        &self,
        deadline: Option<Instant>,
        mut check: impl FnMut(&mut crate::connection::State) -> Option<T>,
    ) -> Result<Option<T>> {
        loop {
            let notified = self.inner.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(v) = check(&mut self.inner.conn.lock()) {
                return Ok(Some(v));
            }
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut notified => {}
                r = self.pump() => r?,
                _ = sleep => return Ok(None),
            }
        }
    }

    /// A method call: SEND with `EXPECT_REPLY` (not blocking the thread),
    /// then the reply is awaited. Errors as for [`Connection::call`].
    pub async fn call(&self, msg: &Message) -> Result<Message> {
        self.call_timeout(msg, None).await
    }

    /// [`AsyncConnection::call`] with a timeout (default: the connection's).
    pub async fn call_timeout(&self, msg: &Message, timeout: Option<Duration>) -> Result<Message> {
        let p = self.inner.conn.call_async(msg, timeout)?;
        let c = p.cookie();
        let deadline =
            Instant::now() + timeout.unwrap_or(kmsg::DEFAULT_TIMEOUT) + Duration::from_millis(500);
        let r = self
            .wait_for(Some(deadline), |st| st.replies.remove(&c))
            .await;
        self.inner.conn.lock().pending.remove(&c);
        let m = match r? {
            Some(m) => m,
            None => kmsg::no_reply(c, self.inner.conn.id(), "Method call timed out")?,
        };
        match m.to_error() {
            Some(e) => Err(e),
            None => Ok(m),
        }
    }

    /// Calls `interface.member` on `path` of `destination` with `body`.
    pub async fn call_method<B>(
        &self,
        destination: &str,
        path: &str,
        interface: Option<&str>,
        member: &str,
        body: &B,
    ) -> Result<Message>
    where
        B: Serialize + DynamicType + ?Sized,
    {
        let mut b = Message::method_call(path, member).destination(destination);
        if let Some(i) = interface {
            b = b.interface(i);
        }
        self.call(&b.build(body)?).await
    }

    /// The next message (as [`Connection::receive`]).
    pub async fn receive(&self) -> Result<Message> {
        loop {
            if let Some(m) = self.wait_for(None, |st| st.queue.pop_front()).await? {
                return Ok(m);
            }
        }
    }

    /// The next message, or `None` after `timeout`.
    pub async fn receive_timeout(&self, timeout: Duration) -> Result<Option<Message>> {
        self.wait_for(Some(Instant::now() + timeout), |st| st.queue.pop_front())
            .await
    }
}
