//! The baselines: an AF_UNIX socketpair between two threads.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

use crate::data::{self, check, poll_in, read_exact, write_all};
use crate::timing::{run_for, Failure, Sample};

fn socketpair(ty: libc::c_int) -> Result<(OwnedFd, OwnedFd), Failure> {
    let mut fds = [0; 2];
    // SAFETY: fds has room for two descriptors.
    if unsafe { libc::socketpair(libc::AF_UNIX, ty | libc::SOCK_CLOEXEC, 0, fds.as_mut_ptr()) } != 0
    {
        return Err(Failure::last("socketpair", "baseline"));
    }
    // SAFETY: two fresh descriptors owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Runs `client` in this thread against `server(fd)` in another until the
/// client closes its end (the server sees end of file and returns).
fn with_server<S, C>(ty: libc::c_int, server: S, client: C) -> Result<Sample, Failure>
where
    S: FnOnce(OwnedFd) -> Result<(), Failure> + Send,
    C: FnOnce(&OwnedFd) -> Result<Sample, Failure>,
{
    let (a, b) = socketpair(ty)?;
    std::thread::scope(|s| {
        let h = s.spawn(move || {
            data::pin_server()?;
            server(b)
        });
        let res = client(&a);
        drop(a);
        let srv = h
            .join()
            .unwrap_or_else(|_| Err(Failure::bad("thread", "socket server", "panicked")));
        match (res, srv) {
            (Ok(sample), Ok(())) => Ok(sample),
            (Err(c), Ok(())) => Err(c),
            (Ok(_), Err(s)) => Err(s),
            (Err(c), Err(s)) => Err(s.also(format!("client: {c}"))),
        }
    })
}

/// Method-call round trips over a `SOCK_SEQPACKET` pair: the client writes
/// `len` bytes and reads the echo; the server polls for `POLLIN`, reads the
/// message and writes it back (the same steps as the kdbus server).
pub fn rtt(len: usize, slice: Duration) -> Result<Sample, Failure> {
    let req = data::payload(len);
    with_server(
        libc::SOCK_SEQPACKET,
        move |fd| {
            let fd = fd.as_raw_fd();
            let mut buf = vec![1u8; len + 1];
            loop {
                poll_in(fd, -1, "socket server").or_else(|e| {
                    // A hang-up without data is the client closing.
                    if e.op == "poll" && e.errno.is_none() {
                        Ok(false)
                    } else {
                        Err(e)
                    }
                })?;
                // SAFETY: buf is valid for writes of its length.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    return Err(Failure::last("read", "socket server"));
                }
                if n == 0 {
                    return Ok(());
                }
                write_all(fd, &buf[..n as usize]).map_err(|e| e.also("socket server"))?;
            }
        },
        |fd| {
            let fd = fd.as_raw_fd();
            let mut buf = vec![1u8; len + 1];
            run_for(slice, 10, || {
                write_all(fd, &req)?;
                // SAFETY: buf is valid for writes of its length.
                let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
                if n < 0 {
                    return Err(Failure::last("read", "socket client"));
                }
                check("socket client", &buf[..n as usize], len)
            })
        },
    )
}

/// Bulk copy over a `SOCK_STREAM` pair: the client writes `data` and
/// waits for a one-byte acknowledgement; the server reads all of it into
/// its own (pre-faulted) buffer, checks it and acknowledges.
pub fn bulk(data: &[u8], slice: Duration) -> Result<Sample, Failure> {
    let len = data.len();
    with_server(
        libc::SOCK_STREAM,
        move |fd| {
            let fd = fd.as_raw_fd();
            let mut buf = vec![1u8; len];
            loop {
                if !read_exact(fd, &mut buf).map_err(|e| e.also("socket server"))? {
                    return Ok(());
                }
                check("socket server", &buf, len)?;
                write_all(fd, &[1]).map_err(|e| e.also("socket server"))?;
            }
        },
        |fd| {
            let fd = fd.as_raw_fd();
            run_for(slice, 2, || {
                write_all(fd, data)?;
                let mut ack = [0u8; 1];
                if !read_exact(fd, &mut ack)? {
                    return Err(Failure::bad("read", "socket client", "server hung up"));
                }
                Ok(())
            })
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn baselines_run() {
        for len in [8, 4096, 65536] {
            let s = rtt(len, Duration::from_millis(20)).unwrap();
            assert!(s.iters >= 10);
        }
        let s = bulk(&data::payload(1 << 20), Duration::from_millis(20)).unwrap();
        assert!(s.iters >= 2);
    }
}
