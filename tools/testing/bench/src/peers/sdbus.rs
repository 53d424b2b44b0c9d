//! sd-bus (libsystemd's D-Bus library, what systemd and many C services
//! use) as the client and the server of the dbus-daemon and dbus-broker
//! measurements: the client sends `org.kdbus.bench.Echo.Echo(ay)` to the
//! well-known name the server owns, through the broker, and waits for the
//! reply in `sd_bus_call`; the server answers from an `sd_bus_add_object`
//! callback driven by `sd_bus_process`/`sd_bus_wait`.
//!
//! Only in the dynamic build: libsystemd has no static library
//! (`sdbus_static.rs` stands in when `crt-static` is on).

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::io::Write;
use std::ptr;

use kdbus::Errno;
use kdbus_bench::data::check;
use kdbus_bench::timing::Failure;

use crate::transport::{Peer, IFACE, MEMBER, NAME, PATH};

#[repr(C)]
struct SdBus {
    _opaque: [u8; 0],
}

#[repr(C)]
struct SdBusMessage {
    _opaque: [u8; 0],
}

#[repr(C)]
struct SdBusSlot {
    _opaque: [u8; 0],
}

/// `sd_bus_error`.
#[repr(C)]
struct SdBusError {
    name: *const c_char,
    message: *const c_char,
    need_free: c_int,
}

impl SdBusError {
    const NULL: SdBusError = SdBusError {
        name: ptr::null(),
        message: ptr::null(),
        need_free: 0,
    };
}

type Handler = unsafe extern "C" fn(*mut SdBusMessage, *mut c_void, *mut SdBusError) -> c_int;

#[link(name = "systemd")]
extern "C" {
    fn sd_bus_new(ret: *mut *mut SdBus) -> c_int;
    fn sd_bus_set_address(bus: *mut SdBus, address: *const c_char) -> c_int;
    fn sd_bus_set_bus_client(bus: *mut SdBus, b: c_int) -> c_int;
    fn sd_bus_start(bus: *mut SdBus) -> c_int;
    fn sd_bus_flush_close_unref(bus: *mut SdBus) -> *mut SdBus;
    fn sd_bus_get_unique_name(bus: *mut SdBus, unique: *mut *const c_char) -> c_int;
    fn sd_bus_request_name(bus: *mut SdBus, name: *const c_char, flags: u64) -> c_int;
    fn sd_bus_add_object(
        bus: *mut SdBus,
        slot: *mut *mut SdBusSlot,
        path: *const c_char,
        callback: Handler,
        userdata: *mut c_void,
    ) -> c_int;
    fn sd_bus_process(bus: *mut SdBus, r: *mut *mut SdBusMessage) -> c_int;
    fn sd_bus_wait(bus: *mut SdBus, timeout_usec: u64) -> c_int;
    fn sd_bus_call(
        bus: *mut SdBus,
        m: *mut SdBusMessage,
        usec: u64,
        ret_error: *mut SdBusError,
        reply: *mut *mut SdBusMessage,
    ) -> c_int;
    fn sd_bus_send(bus: *mut SdBus, m: *mut SdBusMessage, cookie: *mut u64) -> c_int;
    fn sd_bus_message_new_method_call(
        bus: *mut SdBus,
        m: *mut *mut SdBusMessage,
        destination: *const c_char,
        path: *const c_char,
        interface: *const c_char,
        member: *const c_char,
    ) -> c_int;
    fn sd_bus_message_new_method_return(
        call: *mut SdBusMessage,
        m: *mut *mut SdBusMessage,
    ) -> c_int;
    fn sd_bus_message_is_method_call(
        m: *mut SdBusMessage,
        interface: *const c_char,
        member: *const c_char,
    ) -> c_int;
    fn sd_bus_message_get_bus(m: *mut SdBusMessage) -> *mut SdBus;
    fn sd_bus_message_append_array(
        m: *mut SdBusMessage,
        ty: c_char,
        ptr: *const c_void,
        size: usize,
    ) -> c_int;
    fn sd_bus_message_read_array(
        m: *mut SdBusMessage,
        ty: c_char,
        ptr: *mut *const c_void,
        size: *mut usize,
    ) -> c_int;
    fn sd_bus_message_unref(m: *mut SdBusMessage) -> *mut SdBusMessage;
    fn sd_bus_error_free(e: *mut SdBusError);
}

/// [`IFACE`] and [`MEMBER`] for the handler's check.
const IFACE_C: &CStr = c"org.kdbus.bench.Echo";
const MEMBER_C: &CStr = c"Echo";

/// How long a call may wait for its reply, µs.
const CALL_TIMEOUT_US: u64 = 5_000_000;
const BYTE: c_char = b'y' as c_char;

fn sys(op: &'static str, who: &str, r: c_int) -> Failure {
    Failure::sys(op, who, Errno::from_raw(-r))
}

/// A message reference, unreferenced on drop.
struct Msg(*mut SdBusMessage);

impl Drop for Msg {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: we own this reference.
            unsafe { sd_bus_message_unref(self.0) };
        }
    }
}

/// A connection to a bus (`unix:path=...`), flushed and closed on drop.
struct Bus(*mut SdBus);

impl Drop for Bus {
    fn drop(&mut self) {
        // SAFETY: we own the only reference.
        unsafe { sd_bus_flush_close_unref(self.0) };
    }
}

impl Bus {
    fn connect(address: &str, who: &str) -> Result<Bus, Failure> {
        let addr = CString::new(address)
            .map_err(|_| Failure::bad("sd_bus_set_address", who, "NUL in the address"))?;
        let mut b = ptr::null_mut();
        // SAFETY: sd_bus_new fills in a fresh bus object we then own.
        let r = unsafe { sd_bus_new(&mut b) };
        if r < 0 {
            return Err(sys("sd_bus_new", who, r));
        }
        let bus = Bus(b);
        // SAFETY: a valid bus object and NUL-terminated strings.
        unsafe {
            let r = sd_bus_set_address(bus.0, addr.as_ptr());
            if r < 0 {
                return Err(sys("sd_bus_set_address", who, r).also(address));
            }
            let r = sd_bus_set_bus_client(bus.0, 1);
            if r < 0 {
                return Err(sys("sd_bus_set_bus_client", who, r));
            }
            let r = sd_bus_start(bus.0);
            if r < 0 {
                return Err(sys("sd_bus_start", who, r).also(address));
            }
        }
        Ok(bus)
    }

    /// The unique name (waits for the Hello reply).
    fn unique_name(&self, who: &str) -> Result<String, Failure> {
        let mut u = ptr::null();
        // SAFETY: a started bus; the string lives as long as the bus.
        let r = unsafe { sd_bus_get_unique_name(self.0, &mut u) };
        if r < 0 {
            return Err(sys("sd_bus_get_unique_name", who, r));
        }
        // SAFETY: a NUL-terminated string owned by the bus.
        Ok(unsafe { CStr::from_ptr(u) }.to_string_lossy().into_owned())
    }
}

/// The client side: one `sd_bus_call` per round trip, a new message each
/// time (sealed messages cannot be sent twice), as `sd_bus_call_method`
/// does.
pub struct Client {
    bus: Bus,
    dest: CString,
    path: CString,
    iface: CString,
    member: CString,
    /// "sd-bus client via dbus-daemon", for failures.
    who: String,
}

impl Client {
    /// Connects to the bus at `address` (`unix:path=...`) as `who`.
    pub fn connect(address: &str, who: &str) -> Result<Client, Failure> {
        let bus = Bus::connect(address, who)?;
        bus.unique_name(who)?;
        let c = |s: &str| CString::new(s).unwrap();
        Ok(Client {
            bus,
            dest: c(NAME),
            path: c(PATH),
            iface: c(IFACE),
            member: c(MEMBER),
            who: who.to_owned(),
        })
    }
}

impl Peer for Client {
    fn call(&mut self, payload: &[u8]) -> Result<(), Failure> {
        let who = self.who.as_str();
        let mut m = Msg(ptr::null_mut());
        let mut reply = Msg(ptr::null_mut());
        let mut err = SdBusError::NULL;
        // SAFETY: a started bus, NUL-terminated strings, a payload valid
        // for reads of its length; the messages are owned by `Msg`s.
        let r = unsafe {
            let r = sd_bus_message_new_method_call(
                self.bus.0,
                &mut m.0,
                self.dest.as_ptr(),
                self.path.as_ptr(),
                self.iface.as_ptr(),
                self.member.as_ptr(),
            );
            if r < 0 {
                return Err(sys("sd_bus_message_new_method_call", who, r));
            }
            let r = sd_bus_message_append_array(m.0, BYTE, payload.as_ptr().cast(), payload.len());
            if r < 0 {
                return Err(sys("sd_bus_message_append_array", who, r));
            }
            sd_bus_call(self.bus.0, m.0, CALL_TIMEOUT_US, &mut err, &mut reply.0)
        };
        if r < 0 {
            let detail = if err.name.is_null() {
                String::new()
            } else {
                // SAFETY: sd-bus set a NUL-terminated name (and maybe a message).
                unsafe {
                    let name = CStr::from_ptr(err.name).to_string_lossy().into_owned();
                    if err.message.is_null() {
                        name
                    } else {
                        format!("{name}: {}", CStr::from_ptr(err.message).to_string_lossy())
                    }
                }
            };
            // SAFETY: frees what sd_bus_call put into the error.
            unsafe { sd_bus_error_free(&mut err) };
            return Err(sys("sd_bus_call", who, r).also(detail));
        }
        let (mut p, mut n) = (ptr::null(), 0usize);
        // SAFETY: a reply message we own; p/n point into it while it lives.
        let r = unsafe { sd_bus_message_read_array(reply.0, BYTE, &mut p, &mut n) };
        if r < 0 {
            return Err(sys("sd_bus_message_read_array", who, r));
        }
        let got: &[u8] = if n == 0 {
            &[]
        } else {
            // SAFETY: sd-bus returned n readable bytes at p, inside `reply`.
            unsafe { std::slice::from_raw_parts(p.cast(), n) }
        };
        check(who, got, payload.len())
    }
}

/// The method handler: replies to `Echo(ay)` with the same bytes.
unsafe extern "C" fn echo(m: *mut SdBusMessage, _: *mut c_void, _: *mut SdBusError) -> c_int {
    // SAFETY (whole body): `m` is the message sd-bus hands us for this
    // callback; the reply is ours until unreferenced.
    unsafe {
        if sd_bus_message_is_method_call(m, IFACE_C.as_ptr(), MEMBER_C.as_ptr()) <= 0 {
            return 0;
        }
        let (mut p, mut n) = (ptr::null(), 0usize);
        let r = sd_bus_message_read_array(m, BYTE, &mut p, &mut n);
        if r < 0 {
            return r;
        }
        let mut reply = Msg(ptr::null_mut());
        let r = sd_bus_message_new_method_return(m, &mut reply.0);
        if r < 0 {
            return r;
        }
        let r = sd_bus_message_append_array(reply.0, BYTE, p, n);
        if r < 0 {
            return r;
        }
        let r = sd_bus_send(sd_bus_message_get_bus(m), reply.0, ptr::null_mut());
        if r < 0 {
            return r;
        }
    }
    1
}

/// The server process: connects to `address`, exports the echo object,
/// owns the well-known name, prints `ready <unique name>` and serves until
/// the process is ended.
pub fn serve(address: &str) -> Result<(), Failure> {
    let who = "sd-bus server";
    let bus = Bus::connect(address, who)?;
    let path = CString::new(PATH).unwrap();
    let name = CString::new(NAME).unwrap();
    // SAFETY: a started bus, NUL-terminated strings, a callback that does
    // not use its userdata; the slot is left floating (lives with the bus).
    unsafe {
        let r = sd_bus_add_object(bus.0, ptr::null_mut(), path.as_ptr(), echo, ptr::null_mut());
        if r < 0 {
            return Err(sys("sd_bus_add_object", who, r));
        }
        let r = sd_bus_request_name(bus.0, name.as_ptr(), 0);
        if r < 0 {
            return Err(sys("sd_bus_request_name", who, r).also(NAME));
        }
    }
    let unique = bus.unique_name(who)?;
    let mut out = std::io::stdout();
    writeln!(out, "ready {unique}")
        .and_then(|()| out.flush())
        .map_err(|e| Failure::bad("write", who, format!("ready line: {e}")))?;
    loop {
        // SAFETY: a started bus; no message is asked back.
        let r = unsafe { sd_bus_process(bus.0, ptr::null_mut()) };
        if r < 0 {
            return Err(sys("sd_bus_process", who, r));
        }
        if r > 0 {
            continue;
        }
        // SAFETY: as above; waits without a timeout.
        let r = unsafe { sd_bus_wait(bus.0, u64::MAX) };
        if r < 0 && r != -libc::EINTR {
            return Err(sys("sd_bus_wait", who, r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_agree() {
        assert_eq!(IFACE_C.to_str(), Ok(IFACE));
        assert_eq!(MEMBER_C.to_str(), Ok(MEMBER));
    }

    #[test]
    fn connecting_nowhere_fails_cleanly() {
        let e = Client::connect("unix:path=/nonexistent/kdbus-bench.sock", "t")
            .err()
            .unwrap();
        assert!(e.code().starts_with("sd_bus_"), "{e}");
    }
}
