//! Commands and operations: the kdbus ioctls with their fixed structs,
//! the generator of operation sequences, and the rendering of a command
//! into the bytes the kernel reads.
//!
//! An [`Op`] is pure data (descriptors and addresses are symbolic), so the
//! generator is deterministic: the same seed and the same [`View`]s give
//! the same sequence. The executor ([`crate::exec`]) resolves and runs it.

use kdbus::consts::*;
use kdbus::{uapi, CmdBuf, FLAG_NEGOTIATE};

use crate::fds::FdKind;
use crate::items::{self, Addr, FdRef, ItemSpec, Payload, SizeField, BUSES, ENDPOINTS};
use crate::mutate::{self, Place};
use crate::rng::Rng;
use crate::state::{SlotKind, SlotView, View};

/// The kdbus ioctls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmdKind {
    BusMake,
    EndpointMake,
    EndpointUpdate,
    Hello,
    Byebye,
    Free,
    ConnInfo,
    BusCreatorInfo,
    List,
    Update,
    Send,
    Recv,
    NameAcquire,
    NameRelease,
    MatchAdd,
    MatchRemove,
}

impl CmdKind {
    /// Every command.
    pub const ALL: [CmdKind; 16] = [
        CmdKind::BusMake,
        CmdKind::EndpointMake,
        CmdKind::EndpointUpdate,
        CmdKind::Hello,
        CmdKind::Byebye,
        CmdKind::Free,
        CmdKind::ConnInfo,
        CmdKind::BusCreatorInfo,
        CmdKind::List,
        CmdKind::Update,
        CmdKind::Send,
        CmdKind::Recv,
        CmdKind::NameAcquire,
        CmdKind::NameRelease,
        CmdKind::MatchAdd,
        CmdKind::MatchRemove,
    ];

    /// The ioctl number.
    #[allow(clippy::unnecessary_cast)] // bindgen's enum type differs per target
    pub fn request(self) -> u32 {
        (match self {
            CmdKind::BusMake => uapi::KDBUS_CMD_BUS_MAKE,
            CmdKind::EndpointMake => uapi::KDBUS_CMD_ENDPOINT_MAKE,
            CmdKind::EndpointUpdate => uapi::KDBUS_CMD_ENDPOINT_UPDATE,
            CmdKind::Hello => uapi::KDBUS_CMD_HELLO,
            CmdKind::Byebye => uapi::KDBUS_CMD_BYEBYE,
            CmdKind::Free => uapi::KDBUS_CMD_FREE,
            CmdKind::ConnInfo => uapi::KDBUS_CMD_CONN_INFO,
            CmdKind::BusCreatorInfo => uapi::KDBUS_CMD_BUS_CREATOR_INFO,
            CmdKind::List => uapi::KDBUS_CMD_LIST,
            CmdKind::Update => uapi::KDBUS_CMD_UPDATE,
            CmdKind::Send => uapi::KDBUS_CMD_SEND,
            CmdKind::Recv => uapi::KDBUS_CMD_RECV,
            CmdKind::NameAcquire => uapi::KDBUS_CMD_NAME_ACQUIRE,
            CmdKind::NameRelease => uapi::KDBUS_CMD_NAME_RELEASE,
            CmdKind::MatchAdd => uapi::KDBUS_CMD_MATCH_ADD,
            CmdKind::MatchRemove => uapi::KDBUS_CMD_MATCH_REMOVE,
        }) as u32
    }

    /// Size of the fixed command struct.
    pub fn fixed(self) -> usize {
        match self {
            CmdKind::Hello => kdbus::CMD_HELLO_SIZE,
            CmdKind::Free => kdbus::CMD_FREE_SIZE,
            CmdKind::ConnInfo | CmdKind::BusCreatorInfo => kdbus::CMD_INFO_SIZE,
            CmdKind::List => kdbus::CMD_LIST_SIZE,
            CmdKind::Send => kdbus::CMD_SEND_SIZE,
            CmdKind::Recv => kdbus::CMD_RECV_SIZE,
            CmdKind::MatchAdd | CmdKind::MatchRemove => kdbus::CMD_MATCH_SIZE,
            _ => kdbus::CMD_SIZE,
        }
    }

    /// The flags the command accepts besides NEGOTIATE (abi.md 10).
    pub fn allowed_flags(self) -> u64 {
        match self {
            CmdKind::BusMake | CmdKind::EndpointMake => 0x3,
            CmdKind::Hello | CmdKind::List => 0xf,
            CmdKind::Send | CmdKind::MatchAdd => 0x1,
            CmdKind::Recv | CmdKind::NameAcquire => 0x7,
            _ => 0,
        }
    }

    /// The name in statistics.
    pub fn name(self) -> &'static str {
        match self {
            CmdKind::BusMake => "BUS_MAKE",
            CmdKind::EndpointMake => "ENDPOINT_MAKE",
            CmdKind::EndpointUpdate => "ENDPOINT_UPDATE",
            CmdKind::Hello => "HELLO",
            CmdKind::Byebye => "BYEBYE",
            CmdKind::Free => "FREE",
            CmdKind::ConnInfo => "CONN_INFO",
            CmdKind::BusCreatorInfo => "BUS_CREATOR_INFO",
            CmdKind::List => "LIST",
            CmdKind::Update => "UPDATE",
            CmdKind::Send => "SEND",
            CmdKind::Recv => "RECV",
            CmdKind::NameAcquire => "NAME_ACQUIRE",
            CmdKind::NameRelease => "NAME_RELEASE",
            CmdKind::MatchAdd => "MATCH_ADD",
            CmdKind::MatchRemove => "MATCH_REMOVE",
        }
    }

    /// The slot kind the command is meant for.
    pub fn home(self) -> &'static [SlotKind] {
        match self {
            CmdKind::BusMake => &[SlotKind::Control],
            CmdKind::EndpointMake => &[SlotKind::Endpoint],
            CmdKind::EndpointUpdate => &[SlotKind::EndpointOwner],
            CmdKind::Hello => &[SlotKind::Endpoint, SlotKind::CustomEndpoint],
            _ => &[SlotKind::Conn],
        }
    }
}

/// A `kdbus_msg` deadline or reply cookie (the same field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// `CLOCK_MONOTONIC` now plus this many ns.
    FromNow(u64),
    /// Now minus this many ns (already expired).
    Past(u64),
    /// A literal value (a reply's `cookie_reply`, 0, extremes).
    Abs(u64),
}

/// A message for SEND.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MsgSpec {
    pub flags: u64,
    pub priority: i64,
    pub dst_id: u64,
    pub src_id: u64,
    pub payload_type: u64,
    pub cookie: u64,
    pub timeout: Timeout,
    pub items: Vec<ItemSpec>,
    pub size: SizeField,
    pub place: Place,
}

/// A command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CmdSpec {
    pub kind: CmdKind,
    /// Usually `kind.request()`.
    pub request: u32,
    pub flags: u64,
    /// Fixed-struct fields after `return_flags`: `(byte offset, value)`.
    pub fields: Vec<(u16, u64)>,
    pub items: Vec<ItemSpec>,
    pub size: SizeField,
    pub place: Place,
    /// SEND's message (`msg_address` is set when rendering).
    pub msg: Option<MsgSpec>,
}

impl CmdSpec {
    fn new(kind: CmdKind, flags: u64) -> Self {
        CmdSpec {
            kind,
            request: kind.request(),
            flags,
            fields: Vec::new(),
            items: Vec::new(),
            size: SizeField::Exact,
            place: Place::Buf,
            msg: None,
        }
    }

    fn field(mut self, off: u16, v: u64) -> Self {
        self.fields.push((off, v));
        self
    }

    fn item(mut self, i: ItemSpec) -> Self {
        self.items.push(i);
        self
    }

    /// Whether the command (or its message) only negotiates.
    pub fn negotiates(&self) -> bool {
        self.flags & FLAG_NEGOTIATE != 0
    }
}

/// What the executor does after a successful command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Post {
    /// BUS_MAKE / endpoint open: the bus index.
    pub bus: u8,
    /// HELLO: map the pool read-only.
    pub map_pool: bool,
    /// HELLO / RECV / *INFO / LIST / sync SEND: FREE the result slice at
    /// once (else it is remembered for a later FREE or leaked).
    pub free: bool,
    /// A reply: the `(src_id, cookie)` of the call it answers.
    pub reply: Option<(u64, u64)>,
    /// FREE: the offset freed.
    pub offset: Option<u64>,
}

/// What an Open opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpenWhat {
    Control,
    Endpoint { bus: u8 },
    CustomEndpoint { bus: u8, ep: u8 },
    BusDir { bus: u8 },
    Root,
}

/// One step of a fuzz thread.
#[allow(clippy::large_enum_variant)] // made and consumed one at a time
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Open a kdbusfs file into `slot` (closing what was there).
    Open { slot: u8, what: OpenWhat },
    /// A kdbus ioctl.
    Ioctl {
        target: FdRef,
        cmd: CmdSpec,
        post: Post,
    },
    /// `mmap` of a descriptor; a read-only shared mapping of a whole pool
    /// is kept as the slot's pool mapping when `keep`.
    Mmap {
        target: FdRef,
        len: u64,
        prot: i32,
        shared: bool,
        offset: i64,
        keep: bool,
    },
    /// Drop the slot's pool mapping.
    Munmap { slot: u8 },
    /// `poll` on some descriptors.
    Poll {
        fds: Vec<(FdRef, i16)>,
        timeout_ms: i32,
    },
    /// `close` of a slot.
    Close { slot: u8 },
    /// `dup` of `slot` into `to`.
    Dup { slot: u8, to: u8 },
    /// Fork a child that inherits every descriptor, issues `steps`, closes
    /// `close` and exits (while the parent's threads go on).
    Fork {
        steps: Vec<(FdRef, CmdSpec)>,
        close: Vec<u8>,
    },
    /// A new io_uring in slot `to` with `files` registered in it.
    Uring { to: u8, files: Vec<FdRef> },
    /// Add a descriptor to the zoo's epoll and wait on it without blocking.
    EpollAdd { target: FdRef },
    /// Make the userfaultfd area fault again.
    UffdRearm,
}

// --- the generator ----------------------------------------------------------

/// Relative weights of the step kinds.
const STEPS: &[(Step, u32)] = &[
    (Step::Open, 7),
    (Step::Cmd(CmdKind::BusMake), 4),
    (Step::Cmd(CmdKind::EndpointMake), 2),
    (Step::Cmd(CmdKind::EndpointUpdate), 2),
    (Step::Cmd(CmdKind::Hello), 7),
    (Step::Cmd(CmdKind::Byebye), 1),
    (Step::Cmd(CmdKind::Free), 5),
    (Step::Cmd(CmdKind::ConnInfo), 3),
    (Step::Cmd(CmdKind::BusCreatorInfo), 2),
    (Step::Cmd(CmdKind::List), 2),
    (Step::Cmd(CmdKind::Update), 2),
    (Step::Cmd(CmdKind::Send), 24),
    (Step::Cmd(CmdKind::Recv), 20),
    (Step::Cmd(CmdKind::NameAcquire), 4),
    (Step::Cmd(CmdKind::NameRelease), 2),
    (Step::Cmd(CmdKind::MatchAdd), 4),
    (Step::Cmd(CmdKind::MatchRemove), 2),
    (Step::Mmap, 2),
    (Step::Munmap, 1),
    (Step::Poll, 3),
    (Step::Close, 3),
    (Step::Dup, 1),
    (Step::Fork, 1),
    (Step::Uring, 2),
    (Step::Epoll, 1),
    (Step::UffdRearm, 1),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Open,
    Cmd(CmdKind),
    Mmap,
    Munmap,
    Poll,
    Close,
    Dup,
    Fork,
    Uring,
    Epoll,
    UffdRearm,
}

/// The per-thread generator of [`Op`]s.
pub struct Generator {
    rng: Rng,
    cookie: u64,
    /// Percentage of commands that get mutated.
    pub mutate_pct: u32,
    weights: Vec<u32>,
}

impl Generator {
    /// A generator for `seed` mutating `mutate_pct` % of the commands.
    pub fn new(seed: u64, mutate_pct: u32) -> Self {
        Generator {
            rng: Rng::new(seed),
            cookie: 0,
            mutate_pct,
            weights: STEPS.iter().map(|s| s.1).collect(),
        }
    }

    /// The next step for a process whose table looks like `v`.
    pub fn next(&mut self, v: &View) -> Op {
        // Answer pending calls and free slices first, some of the time, so
        // that calls succeed and pools do not fill up.
        if self.rng.percent(30) {
            if let Some(op) = self.chore(v) {
                return op;
            }
        }
        let step = STEPS[self.rng.weighted(&self.weights)].0;
        match step {
            Step::Open => self.open(v),
            Step::Cmd(kind) => self.command(kind, v),
            Step::Mmap => self.mmap(v),
            Step::Munmap => match self.pick_slot(v, |s| s.mapped) {
                Some(slot) => Op::Munmap { slot },
                None => self.mmap(v),
            },
            Step::Poll => {
                let fds = (0..self.rng.range(1, 3))
                    .map(|_| {
                        let f = self.any_target(v);
                        (f, self.rng.subset(0x3f) as i16)
                    })
                    .collect();
                let timeout_ms = if self.rng.percent(80) {
                    0
                } else {
                    self.rng.range(1, 10) as i32
                };
                Op::Poll { fds, timeout_ms }
            }
            Step::Close => match self.pick_slot(v, |s| s.kind != SlotKind::Empty) {
                Some(slot) => Op::Close { slot },
                None => self.open(v),
            },
            Step::Dup => match self.pick_slot(v, |s| s.kind != SlotKind::Empty) {
                Some(slot) => Op::Dup {
                    slot,
                    to: self.new_slot(v),
                },
                None => self.open(v),
            },
            Step::Fork => self.fork(v),
            Step::Uring => {
                let occupied = v.occupied();
                let conns = v.of_kind(&[SlotKind::Conn]);
                let files = (0..self.rng.range(1, 3))
                    .map(|_| {
                        if !conns.is_empty() && self.rng.percent(70) {
                            FdRef::Slot(*self.rng.pick(&conns))
                        } else {
                            items::any_fd(&mut self.rng, &occupied)
                        }
                    })
                    .collect();
                Op::Uring {
                    to: self.new_slot(v),
                    files,
                }
            }
            Step::Epoll => Op::EpollAdd {
                target: self.any_target(v),
            },
            Step::UffdRearm => Op::UffdRearm,
        }
    }

    /// A reply to a pending call or a FREE of a remembered slice.
    fn chore(&mut self, v: &View) -> Option<Op> {
        let with_calls: Vec<u8> = v
            .live_conns()
            .into_iter()
            .filter(|&i| !v.slots[i as usize].calls.is_empty())
            .collect();
        if !with_calls.is_empty() && self.rng.percent(70) {
            let slot = *self.rng.pick(&with_calls);
            let s = &v.slots[slot as usize];
            let call = *self.rng.pick(&s.calls);
            let (mut cmd, mut post) = self.send_to(v, s, Mode::Reply(call));
            post.reply = Some(call);
            self.maybe_mutate(&mut cmd, v);
            return Some(Op::Ioctl {
                target: FdRef::Slot(slot),
                cmd,
                post,
            });
        }
        let with_offsets: Vec<u8> = v
            .live_conns()
            .into_iter()
            .filter(|&i| !v.slots[i as usize].offsets.is_empty())
            .collect();
        if with_offsets.is_empty() {
            return None;
        }
        let slot = *self.rng.pick(&with_offsets);
        let (cmd, post) = self.free(Some(&v.slots[slot as usize]));
        Some(Op::Ioctl {
            target: FdRef::Slot(slot),
            cmd,
            post,
        })
    }

    fn pick_slot(&mut self, v: &View, f: impl Fn(&SlotView) -> bool) -> Option<u8> {
        let c: Vec<u8> = (0..v.slots.len() as u8)
            .filter(|&i| f(&v.slots[i as usize]))
            .collect();
        if c.is_empty() {
            None
        } else {
            Some(*self.rng.pick(&c))
        }
    }

    /// A slot for a new descriptor: a free one, else one holding something
    /// of little use (a dead connection, an unset handle, a directory),
    /// rarely anything (which may close a bus owner mid-traffic).
    fn new_slot(&mut self, v: &View) -> u8 {
        let free = v.free();
        if !free.is_empty() && self.rng.percent(95) {
            return *self.rng.pick(&free);
        }
        let cheap: Vec<u8> = (0..v.slots.len() as u8)
            .filter(|&i| {
                let s = &v.slots[i as usize];
                s.dead
                    || matches!(
                        s.kind,
                        SlotKind::Other
                            | SlotKind::Ring
                            | SlotKind::Control
                            | SlotKind::Endpoint
                            | SlotKind::CustomEndpoint
                    )
            })
            .collect();
        if !cheap.is_empty() && self.rng.percent(90) {
            *self.rng.pick(&cheap)
        } else {
            self.rng.below(v.slots.len() as u64) as u8
        }
    }

    /// Any descriptor: a slot, a zoo kind or a literal number.
    fn any_target(&mut self, v: &View) -> FdRef {
        items::any_fd(&mut self.rng, &v.occupied())
    }

    /// The bus a new descriptor is opened on: mostly one this process
    /// owns, else any.
    fn some_bus(&mut self, v: &View) -> u8 {
        let owned: Vec<u8> = v
            .slots
            .iter()
            .filter(|s| s.kind == SlotKind::BusOwner)
            .map(|s| s.bus)
            .collect();
        if !owned.is_empty() && self.rng.percent(80) {
            *self.rng.pick(&owned)
        } else {
            self.rng.below(u64::from(BUSES)) as u8
        }
    }

    fn open(&mut self, v: &View) -> Op {
        let bus = self.some_bus(v);
        let what = match self.rng.below(20) {
            0..=4 => OpenWhat::Control,
            5..=15 => OpenWhat::Endpoint { bus },
            16 | 17 => OpenWhat::CustomEndpoint {
                bus,
                ep: self.rng.below(u64::from(ENDPOINTS)) as u8,
            },
            18 => OpenWhat::BusDir { bus },
            _ => OpenWhat::Root,
        };
        Op::Open {
            slot: self.new_slot(v),
            what,
        }
    }

    /// What to do when a command has no slot of its kind: create one.
    fn setup(&mut self, v: &View) -> Op {
        let has = |k: SlotKind| v.slots.iter().any(|s| s.kind == k);
        if !has(SlotKind::BusOwner) && self.rng.percent(60) {
            if let Some(slot) = self.pick_slot(v, |s| s.kind == SlotKind::Control) {
                return self.ioctl_on(CmdKind::BusMake, v, slot);
            }
            return Op::Open {
                slot: self.new_slot(v),
                what: OpenWhat::Control,
            };
        }
        match self.pick_slot(v, |s| {
            matches!(s.kind, SlotKind::Endpoint | SlotKind::CustomEndpoint) && !s.dead
        }) {
            Some(slot) => self.ioctl_on(CmdKind::Hello, v, slot),
            None => Op::Open {
                slot: self.new_slot(v),
                what: OpenWhat::Endpoint {
                    bus: self.some_bus(v),
                },
            },
        }
    }

    fn ioctl_on(&mut self, kind: CmdKind, v: &View, slot: u8) -> Op {
        let (mut cmd, post) = self.build(kind, v, Some(&v.slots[slot as usize]));
        self.maybe_mutate(&mut cmd, v);
        Op::Ioctl {
            target: FdRef::Slot(slot),
            cmd,
            post,
        }
    }

    /// A command of `kind`: usually on a slot of its home kind (a live
    /// connection for connection commands), sometimes on anything.
    fn command(&mut self, kind: CmdKind, v: &View) -> Op {
        let all = v.of_kind(kind.home());
        let live: Vec<u8> = all
            .iter()
            .copied()
            .filter(|&i| !v.slots[i as usize].dead)
            .collect();
        let home = if live.is_empty() || self.rng.percent(3) {
            all
        } else {
            live
        };
        if home.is_empty() || self.rng.percent(7) {
            if home.is_empty() && self.rng.percent(75) {
                return self.setup(v);
            }
            let target = self.any_target(v);
            let view = match target {
                FdRef::Slot(i) => Some(v.slots[i as usize].clone()),
                _ => None,
            };
            let (mut cmd, post) = self.build(kind, v, view.as_ref());
            self.maybe_mutate(&mut cmd, v);
            return Op::Ioctl { target, cmd, post };
        }
        let slot = *self.rng.pick(&home);
        self.ioctl_on(kind, v, slot)
    }

    fn next_cookie(&mut self) -> u64 {
        self.cookie += 1;
        match self.rng.below(50) {
            0 => 0,
            1..=4 => self.cookie.saturating_sub(self.rng.below(4)).max(1), // reused
            _ => self.cookie,
        }
    }

    /// A well-formed command of `kind` for the slot `me` (if known).
    pub fn build(&mut self, kind: CmdKind, v: &View, me: Option<&SlotView>) -> (CmdSpec, Post) {
        let r = &mut self.rng;
        let bus = me
            .map(|s| s.bus)
            .unwrap_or_else(|| r.below(u64::from(BUSES)) as u8);
        let mut post = Post {
            bus,
            ..Post::default()
        };
        let make_flags = |r: &mut Rng| {
            if r.percent(70) {
                0
            } else {
                r.subset(MAKE_ACCESS_GROUP | MAKE_ACCESS_WORLD)
            }
        };
        let cmd = match kind {
            CmdKind::BusMake => {
                let b = r.below(u64::from(BUSES)) as u8;
                post.bus = b;
                let mut c = CmdSpec::new(kind, make_flags(r))
                    .item(ItemSpec::str(ITEM_MAKE_NAME, &items::bus_name(b)))
                    .item(items::bloom_parameter(r));
                if r.percent(30) {
                    c = c.item(ItemSpec::u64(ITEM_ATTACH_FLAGS_SEND, items::attach_mask(r)));
                }
                if r.percent(5) {
                    c.items[0] =
                        ItemSpec::new(ITEM_MAKE_NAME, Payload::Bytes(items::bad_sysname(r)));
                }
                c
            }
            CmdKind::EndpointMake => {
                let name = items::endpoint_name(r.below(u64::from(ENDPOINTS)) as u8);
                let mut c =
                    CmdSpec::new(kind, make_flags(r)).item(ItemSpec::str(ITEM_MAKE_NAME, &name));
                if r.percent(5) {
                    c.items[0] =
                        ItemSpec::new(ITEM_MAKE_NAME, Payload::Bytes(items::bad_sysname(r)));
                }
                c
            }
            CmdKind::EndpointUpdate => {
                let n = r.range(0, 3) as usize;
                let mut c = CmdSpec::new(kind, 0);
                c.items = items::policy_items(r, n);
                c
            }
            CmdKind::Hello => {
                let flags = match r.below(20) {
                    0 => HELLO_ACTIVATOR | HELLO_ACCEPT_FD,
                    1 => HELLO_POLICY_HOLDER,
                    2 => HELLO_MONITOR | HELLO_ACCEPT_FD,
                    3 => 0,
                    4 => r.subset(0xf),
                    _ => HELLO_ACCEPT_FD,
                };
                let pool: u64 = match r.below(20) {
                    0 => 0,
                    1 => 4096 + r.range(1, 4095),
                    2 => 4096,
                    3 => 1 << 30,
                    4 => !4095u64,
                    5..=8 => 64 << 10,
                    _ => 1 << 20,
                };
                let send = if r.percent(70) {
                    r.subset(ATTACH_TIMESTAMP | ATTACH_CREDS)
                } else {
                    items::attach_mask(r)
                };
                let recv = if r.percent(50) {
                    0
                } else {
                    items::attach_mask(r)
                };
                let mut c = CmdSpec::new(kind, flags)
                    .field(24, send)
                    .field(32, recv)
                    .field(56, pool);
                if flags & (HELLO_ACTIVATOR | HELLO_POLICY_HOLDER) != 0 || r.percent(3) {
                    let mut p = items::policy_items(r, 1);
                    if r.percent(50) {
                        p.truncate(1);
                    }
                    c.items.extend(p);
                }
                if r.percent(30) {
                    c.items.push(items::conn_description(r));
                }
                if r.percent(5) {
                    c.items.push(items::faked_creds(r));
                }
                post.map_pool = r.percent(92);
                post.free = r.percent(90);
                c
            }
            CmdKind::Byebye => CmdSpec::new(kind, 0),
            CmdKind::Free => return self.free(me),
            CmdKind::ConnInfo => {
                let ids = v.all_ids();
                let id = items::conn_id(r, &ids, v.max_id);
                let mut c = CmdSpec::new(kind, 0)
                    .field(24, id)
                    .field(32, items::attach_mask(r));
                if r.percent(30) {
                    if r.percent(50) {
                        c.fields[0].1 = 0;
                    }
                    c.items.push(items::name_item(r, ITEM_NAME));
                }
                post.free = r.percent(90);
                c
            }
            CmdKind::BusCreatorInfo => {
                post.free = r.percent(90);
                CmdSpec::new(kind, 0).field(32, items::attach_mask(r))
            }
            CmdKind::List => {
                post.free = r.percent(90);
                CmdSpec::new(kind, r.range(0, 0xf))
            }
            CmdKind::Update => {
                let mut c = CmdSpec::new(kind, 0);
                if r.percent(60) {
                    c.items
                        .push(ItemSpec::u64(ITEM_ATTACH_FLAGS_SEND, items::attach_mask(r)));
                }
                if r.percent(60) {
                    c.items
                        .push(ItemSpec::u64(ITEM_ATTACH_FLAGS_RECV, items::attach_mask(r)));
                }
                let holder = me.is_some_and(|s| s.hello_flags & HELLO_POLICY_HOLDER != 0);
                if holder || r.percent(5) {
                    let n = r.range(1, 2) as usize;
                    c.items.extend(items::policy_items(r, n));
                }
                c
            }
            CmdKind::Send => {
                let me = me.cloned().unwrap_or_default();
                let mode = self.send_mode(&me);
                return self.send_to(v, &me, mode);
            }
            CmdKind::Recv => {
                let flags = match r.below(20) {
                    0..=2 => RECV_PEEK,
                    3 | 4 => RECV_DROP,
                    5..=7 => RECV_USE_PRIORITY,
                    8 => RECV_PEEK | RECV_USE_PRIORITY,
                    9 => RECV_DROP | RECV_USE_PRIORITY,
                    _ => 0,
                };
                let prio = if r.percent(80) {
                    r.range(0, 10) as i64 - 5
                } else {
                    *r.pick(&[i64::MIN, i64::MAX, -1, 0])
                };
                post.free = r.percent(85);
                CmdSpec::new(kind, flags).field(24, prio as u64)
            }
            CmdKind::NameAcquire => {
                let flags = if r.percent(60) { r.subset(0x7) } else { 0 };
                CmdSpec::new(kind, flags).item(items::name_item(r, ITEM_NAME))
            }
            CmdKind::NameRelease => CmdSpec::new(kind, 0).item(items::name_item(r, ITEM_NAME)),
            CmdKind::MatchAdd => {
                let ids = v.all_ids();
                let bloom = me.map(|s| s.bloom).unwrap_or(64);
                let flags = if r.percent(20) { 1 } else { 0 };
                let mut c = CmdSpec::new(kind, flags).field(24, r.range(1, 8));
                for _ in 0..*r.pick(&[0u64, 0, 1, 1, 1, 2, 3, 6]) {
                    c.items.push(items::match_rule(r, bloom, &ids, v.max_id));
                }
                c
            }
            CmdKind::MatchRemove => CmdSpec::new(kind, 0).field(24, r.range(0, 9)),
        };
        (cmd, post)
    }

    fn free(&mut self, me: Option<&SlotView>) -> (CmdSpec, Post) {
        let r = &mut self.rng;
        let offs = me.map(|s| s.offsets.as_slice()).unwrap_or(&[]);
        let off = if !offs.is_empty() && r.percent(90) {
            *r.pick(offs)
        } else {
            match r.below(4) {
                0 => 0,
                1 => r.below(1 << 20) & !7,
                2 => me.map(|s| s.pool_size).unwrap_or(1 << 20),
                _ => mutate::interesting_u64(r),
            }
        };
        let post = Post {
            offset: Some(off),
            ..Post::default()
        };
        (CmdSpec::new(CmdKind::Free, 0).field(24, off), post)
    }

    fn send_mode(&mut self, me: &SlotView) -> Mode {
        match self.rng.weighted(&[40, 14, 10, 12, 8, 4]) {
            0 => Mode::Unicast,
            1 => Mode::Call,
            2 => Mode::Sync,
            3 => Mode::Broadcast,
            4 => Mode::Name,
            _ if !me.calls.is_empty() => Mode::Reply(*self.rng.pick(&me.calls)),
            _ => Mode::Reply((self.rng.range(1, 64), self.rng.range(1, 64))),
        }
    }

    /// A SEND from `me` in `mode`.
    fn send_to(&mut self, v: &View, me: &SlotView, mode: Mode) -> (CmdSpec, Post) {
        let mapped = v.mapped();
        let occupied = v.occupied();
        let rings = v.of_kind(&[SlotKind::Ring]);
        let cookie = self.next_cookie();
        let r = &mut self.rng;
        let peers = v.peer_ids(me.bus, me.id);
        let peer = |r: &mut Rng| {
            if !peers.is_empty() && r.percent(85) {
                *r.pick(&peers)
            } else {
                items::conn_id(r, &[], v.max_id)
            }
        };
        let mut msg = MsgSpec {
            flags: 0,
            priority: if r.percent(80) {
                0
            } else {
                r.range(0, 20) as i64 - 10
            },
            dst_id: 0,
            src_id: match r.below(40) {
                0 => me.id,
                1 => r.range(1, v.max_id + 2),
                _ => 0,
            },
            payload_type: match r.below(40) {
                0 => PAYLOAD_KERNEL,
                1 => r.u64(),
                _ => PAYLOAD_DBUS,
            },
            cookie,
            timeout: Timeout::Abs(0),
            items: items::payload_vecs(r, &mapped),
            size: SizeField::Exact,
            place: Place::Buf,
        };
        let call_timeout = |r: &mut Rng| match r.below(40) {
            0..=2 => Timeout::Past(r.range(1, 1 << 40)),
            3 => Timeout::Abs(0),
            4 => Timeout::Abs(u64::MAX),
            5 => Timeout::FromNow(2_000_000_000),
            _ => Timeout::FromNow(r.range(1, 300) * 1_000_000),
        };
        let mut cmd_flags = 0;
        let mut cmd_items = Vec::new();
        match mode {
            Mode::Unicast => msg.dst_id = peer(r),
            Mode::Call => {
                msg.dst_id = peer(r);
                msg.flags = MSG_EXPECT_REPLY;
                msg.timeout = call_timeout(r);
            }
            Mode::Sync => {
                msg.dst_id = peer(r);
                msg.flags = MSG_EXPECT_REPLY;
                msg.timeout = match r.below(30) {
                    0 => Timeout::Past(1),
                    1 => Timeout::FromNow(1_500_000_000),
                    _ => Timeout::FromNow(r.range(1, 150) * 1_000_000),
                };
                cmd_flags = SEND_SYNC_REPLY;
                if r.percent(30) {
                    // Mostly a pollable kind that can fire, else anything
                    // (ttys, sockets, memfds, kdbus handles ...).
                    let fd = if r.percent(60) {
                        FdRef::Zoo(*r.pick(FdKind::CANCEL))
                    } else {
                        items::any_fd(r, &occupied)
                    };
                    cmd_items.push(ItemSpec::new(ITEM_CANCEL_FD, Payload::Fd(fd)));
                }
            }
            Mode::Broadcast => {
                msg.dst_id = kdbus::DST_ID_BROADCAST;
                msg.flags = MSG_SIGNAL;
                msg.items.push(items::bloom_filter(r, me.bloom.max(8)));
            }
            Mode::Name => {
                msg.dst_id = 0;
                msg.items.push(items::name_item(r, ITEM_DST_NAME));
                if r.percent(30) {
                    msg.flags = MSG_EXPECT_REPLY;
                    msg.timeout = call_timeout(r);
                }
                if r.percent(20) {
                    msg.flags |= MSG_NO_AUTO_START;
                }
            }
            Mode::Reply((src, cookie)) => {
                msg.dst_id = src;
                msg.timeout = Timeout::Abs(cookie);
            }
        }
        if r.percent(12) {
            for _ in 0..*r.pick(&[1, 1, 2, 17]) {
                msg.items.push(items::payload_memfd(r));
            }
        }
        if mode != Mode::Broadcast && r.percent(15) || r.percent(2) {
            msg.items.push(items::fds_item(r, &occupied, &rings));
        }
        let mut cmd = CmdSpec::new(CmdKind::Send, cmd_flags);
        cmd.items = cmd_items;
        cmd.msg = Some(msg);
        let post = Post {
            bus: me.bus,
            free: r.percent(90),
            ..Post::default()
        };
        (cmd, post)
    }

    /// Mutates `mutate_pct` % of the commands in one to three ways, and
    /// makes a few others plain negotiation calls.
    fn maybe_mutate(&mut self, cmd: &mut CmdSpec, v: &View) {
        let r = &mut self.rng;
        if r.percent(2) {
            cmd.flags |= FLAG_NEGOTIATE;
            let types: Vec<u64> = (0..r.range(1, 6))
                .map(|_| *r.pick(items::ALL_ITEM_TYPES))
                .collect();
            cmd.items
                .push(ItemSpec::new(ITEM_NEGOTIATE, Payload::U64s(types)));
            if let Some(m) = cmd.msg.as_mut() {
                if r.percent(50) {
                    m.flags |= FLAG_NEGOTIATE;
                }
            }
            return;
        }
        if !r.percent(self.mutate_pct) {
            return;
        }
        let mapped = v.mapped();
        for _ in 0..*r.pick(&[1, 1, 1, 2, 2, 3]) {
            let on_msg = cmd.msg.is_some() && r.percent(60);
            match r.below(12) {
                0 | 1 => {
                    if on_msg {
                        let m = cmd.msg.as_mut().unwrap();
                        m.size = mutate::size(r, 64, 64);
                    } else {
                        let f = cmd.kind.fixed() as u64;
                        cmd.size = mutate::size(r, f, f);
                    }
                }
                2 | 3 => {
                    if on_msg {
                        let m = cmd.msg.as_mut().unwrap();
                        m.flags = mutate::flags(r, m.flags, 0x7);
                    } else {
                        cmd.flags = mutate::flags(r, cmd.flags, cmd.kind.allowed_flags());
                    }
                }
                4..=6 => {
                    if on_msg {
                        mutate::items(r, &mut cmd.msg.as_mut().unwrap().items);
                    } else {
                        mutate::items(r, &mut cmd.items);
                    }
                }
                7 => {
                    if on_msg {
                        let m = cmd.msg.as_mut().unwrap();
                        let v = mutate::interesting_u64(r);
                        match r.below(5) {
                            0 => m.dst_id = v,
                            1 => m.src_id = v,
                            2 => m.priority = v as i64,
                            3 => m.cookie = v,
                            _ => m.timeout = Timeout::Abs(v),
                        }
                    } else {
                        let fixed = cmd.kind.fixed() as u16;
                        if fixed > 24 {
                            let off = 24 + 8 * r.below(u64::from((fixed - 24) / 8)) as u16;
                            cmd.fields.push((off, mutate::interesting_u64(r)));
                        }
                    }
                }
                8 | 9 => {
                    let p = mutate::place(r, &mapped);
                    match cmd.msg.as_mut() {
                        Some(m) if on_msg => m.place = p,
                        _ => cmd.place = p,
                    }
                }
                10 => cmd.request = mutate::request(r, cmd.request),
                _ => {
                    let item = items::random_item(r);
                    match cmd.msg.as_mut() {
                        Some(m) if on_msg => m.items.push(item),
                        _ => cmd.items.push(item),
                    }
                }
            }
        }
    }

    fn mmap(&mut self, v: &View) -> Op {
        let target = match self.pick_slot(v, |s| s.kind == SlotKind::Conn) {
            Some(s) if self.rng.percent(85) => FdRef::Slot(s),
            _ => self.any_target(v),
        };
        let pool = match target {
            FdRef::Slot(s) => v.slots[s as usize].pool_size.max(4096),
            _ => 1 << 20,
        };
        let r = &mut self.rng;
        let plain = r.percent(70);
        let len = if plain {
            pool
        } else {
            *r.pick(&[4096, pool / 2, pool + 4096, pool * 2, 0, 1])
        };
        let prot = if plain {
            libc::PROT_READ
        } else {
            *r.pick(&[
                libc::PROT_READ,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::PROT_WRITE,
                libc::PROT_NONE,
                libc::PROT_READ | libc::PROT_EXEC,
            ])
        };
        let offset = if plain {
            0
        } else {
            *r.pick(&[0i64, 4096, 1, -4096, pool as i64])
        };
        Op::Mmap {
            target,
            len,
            prot,
            shared: plain || r.percent(70),
            offset,
            keep: r.percent(80),
        }
    }

    fn fork(&mut self, v: &View) -> Op {
        let occupied = v.occupied();
        let mut steps = Vec::new();
        for _ in 0..self.rng.range(1, 4) {
            let kind = *self.rng.pick(&[
                CmdKind::Send,
                CmdKind::Send,
                CmdKind::Recv,
                CmdKind::Byebye,
                CmdKind::NameAcquire,
                CmdKind::MatchAdd,
                CmdKind::Hello,
                CmdKind::BusMake,
                CmdKind::ConnInfo,
            ]);
            let home = v.of_kind(kind.home());
            let slot = if !home.is_empty() && self.rng.percent(85) {
                *self.rng.pick(&home)
            } else if !occupied.is_empty() {
                *self.rng.pick(&occupied)
            } else {
                0
            };
            let (mut cmd, _) = self.build(kind, v, Some(&v.slots[slot as usize]));
            self.maybe_mutate(&mut cmd, v);
            // The child runs pre-rendered buffers: one copy area is not
            // enough for several misplaced commands.
            cmd.place = Place::Buf;
            if let Some(m) = cmd.msg.as_mut() {
                m.place = Place::Buf;
            }
            steps.push((FdRef::Slot(slot), cmd));
        }
        let close = if occupied.is_empty() {
            Vec::new()
        } else {
            (0..self.rng.range(0, 3))
                .map(|_| *self.rng.pick(&occupied))
                .collect()
        };
        Op::Fork { steps, close }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Unicast,
    Call,
    Sync,
    Broadcast,
    Name,
    Reply((u64, u64)),
}

// --- rendering --------------------------------------------------------------

/// Turns symbolic descriptors and addresses into numbers.
pub trait Resolve {
    /// The number of descriptor `f`.
    fn fd(&mut self, f: FdRef) -> i32;
    /// The address `a`.
    fn addr(&mut self, a: Addr) -> u64;
    /// Where the kernel finds `buf` when placed as `p` (copy `area` 0 for
    /// commands, 1 for messages).
    fn place(&mut self, p: Place, area: usize, buf: &mut CmdBuf) -> u64;
    /// `CLOCK_MONOTONIC` now in ns.
    fn now_ns(&mut self) -> u64;
}

/// A command ready for the ioctl.
pub struct Rendered {
    /// The ioctl number.
    pub request: u32,
    /// The command buffer (results are read back into it).
    pub cmd: CmdBuf,
    /// SEND's message buffer, which `msg_address` may point into (kept
    /// alive until the ioctl is done).
    #[cfg_attr(not(test), allow(dead_code))]
    pub msg: Option<CmdBuf>,
    /// The argument passed to the ioctl.
    pub arg: u64,
}

/// The bytes of an item payload.
pub fn payload_bytes(p: &Payload, r: &mut impl Resolve) -> Vec<u8> {
    match p {
        Payload::Bytes(b) => b.clone(),
        Payload::U64s(w) => w.iter().flat_map(|x| x.to_ne_bytes()).collect(),
        Payload::Vec { size, addr } => {
            let mut b = size.to_ne_bytes().to_vec();
            b.extend(r.addr(*addr).to_ne_bytes());
            b
        }
        Payload::Memfd { start, size, fd } => {
            let mut b = start.to_ne_bytes().to_vec();
            b.extend(size.to_ne_bytes());
            b.extend(r.fd(*fd).to_ne_bytes());
            b.extend(0u32.to_ne_bytes());
            b
        }
        Payload::Fds(fds) => fds.iter().flat_map(|f| r.fd(*f).to_ne_bytes()).collect(),
        Payload::Fd(f) => r.fd(*f).to_ne_bytes().to_vec(),
    }
}

/// Largest buffer the kernel may read for a claimed size (it refuses
/// anything above 32 KiB before copying).
const READ_LIMIT: u64 = 36 << 10;

/// Builds `fixed` bytes plus the items, then sets the `size` field and pads
/// the buffer so that the kernel never reads or writes past it.
fn stream(fixed: usize, items: &[ItemSpec], size: SizeField, r: &mut impl Resolve) -> CmdBuf {
    let mut b = CmdBuf::new(fixed);
    let mut unpadded = fixed as u64;
    for it in items {
        let p = payload_bytes(&it.payload, r);
        let exact = 16 + p.len() as u64;
        let off = b.push_item_with_size(it.size.apply(exact, exact), it.ty, &p);
        unpadded = off as u64 + exact;
    }
    let exact = b.len() as u64;
    let size = size.apply(exact, unpadded);
    let want = size.min(READ_LIMIT).max(fixed as u64 + 64);
    if want > exact {
        b.push_raw(&vec![0; (want - exact) as usize]);
    }
    b.set_size(size);
    b
}

/// Renders `spec` (and its message) into buffers and places them.
pub fn render(spec: &CmdSpec, r: &mut impl Resolve) -> Rendered {
    let mut msg_buf = None;
    let mut msg_addr = 0;
    if let Some(m) = &spec.msg {
        let mut b = stream(kdbus::MSG_HEADER_SIZE, &m.items, m.size, r);
        b.set_flags(m.flags);
        b.set_u64(16, m.priority as u64);
        b.set_u64(24, m.dst_id);
        b.set_u64(32, m.src_id);
        b.set_u64(40, m.payload_type);
        b.set_u64(48, m.cookie);
        let t = match m.timeout {
            Timeout::FromNow(d) => r.now_ns().saturating_add(d),
            Timeout::Past(d) => r.now_ns().saturating_sub(d).max(1),
            Timeout::Abs(v) => v,
        };
        b.set_u64(56, t);
        msg_addr = r.place(m.place, 1, &mut b);
        msg_buf = Some(b);
    }
    let mut cmd = stream(spec.kind.fixed(), &spec.items, spec.size, r);
    cmd.set_flags(spec.flags);
    if spec.kind == CmdKind::Send {
        cmd.set_u64(kdbus::send_off::MSG_ADDRESS, msg_addr);
    }
    for &(off, v) in &spec.fields {
        cmd.set_u64(off as usize, v);
    }
    let arg = r.place(spec.place, 0, &mut cmd);
    Rendered {
        request: spec.request,
        cmd,
        msg: msg_buf,
        arg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::SLOTS;

    /// Deterministic stand-ins for descriptors and addresses.
    struct Fake;

    impl Resolve for Fake {
        fn fd(&mut self, f: FdRef) -> i32 {
            match f {
                FdRef::Slot(n) => 100 + i32::from(n),
                FdRef::Zoo(k) => 200 + k as i32,
                FdRef::Raw(n) => n,
            }
        }
        fn addr(&mut self, a: Addr) -> u64 {
            match a {
                Addr::Null => 0,
                Addr::Data { off } => 0x10_0000 + u64::from(off),
                Addr::Raw(v) => v,
                other => 0x20_0000 + format!("{other:?}").len() as u64,
            }
        }
        fn place(&mut self, p: Place, area: usize, _buf: &mut CmdBuf) -> u64 {
            0x30_0000 + area as u64 * 0x1000 + format!("{p:?}").len() as u64
        }
        fn now_ns(&mut self) -> u64 {
            1_000_000_000
        }
    }

    /// A table with a bit of everything, as a running process has.
    fn rich_view() -> View {
        let mut v = View::empty();
        let k = [
            SlotKind::Control,
            SlotKind::BusOwner,
            SlotKind::Endpoint,
            SlotKind::CustomEndpoint,
            SlotKind::EndpointOwner,
            SlotKind::Conn,
            SlotKind::Conn,
            SlotKind::Conn,
            SlotKind::Other,
        ];
        for (i, kind) in k.iter().enumerate() {
            let s = &mut v.slots[i];
            s.kind = *kind;
            s.bus = (i % 2) as u8;
            if *kind == SlotKind::Conn {
                s.id = 10 + i as u64;
                s.bloom = 64;
                s.pool_size = 1 << 20;
                s.mapped = true;
                s.hello_flags = HELLO_ACCEPT_FD;
                s.offsets = vec![0x1000, 0x2000];
                s.calls = vec![(11, 5)];
            }
        }
        v.max_id = 20;
        v
    }

    /// The ops and their rendered bytes.
    fn sequence(seed: u64, n: usize) -> Vec<(String, Vec<u8>)> {
        let v = rich_view();
        let mut g = Generator::new(seed, 25);
        (0..n)
            .map(|_| {
                let op = g.next(&v);
                let bytes = match &op {
                    Op::Ioctl { cmd, .. } => {
                        let r = render(cmd, &mut Fake);
                        let mut b = r.cmd.as_bytes().to_vec();
                        if let Some(m) = r.msg {
                            b.extend_from_slice(m.as_bytes());
                        }
                        b
                    }
                    _ => Vec::new(),
                };
                (format!("{op:?}"), bytes)
            })
            .collect()
    }

    #[test]
    fn same_seed_same_sequence() {
        let a = sequence(1234, 3000);
        let b = sequence(1234, 3000);
        assert_eq!(a, b);
        let c = sequence(1235, 3000);
        assert_ne!(a, c);
    }

    #[test]
    fn every_command_and_step_is_generated() {
        let v = rich_view();
        let mut g = Generator::new(99, 25);
        let mut cmds = std::collections::HashSet::new();
        let mut steps = std::collections::HashSet::new();
        let (mut sync, mut cancel, mut ok_shape) = (0, 0, 0);
        for _ in 0..30_000 {
            let op = g.next(&v);
            let name = format!("{op:?}");
            steps.insert(name.split([' ', '{', '(']).next().unwrap().to_string());
            if let Op::Ioctl { cmd, .. } = &op {
                cmds.insert(cmd.kind);
                if cmd.flags & SEND_SYNC_REPLY != 0 {
                    sync += 1;
                    if cmd.items.iter().any(|i| i.ty == ITEM_CANCEL_FD) {
                        cancel += 1;
                    }
                }
                if cmd.request == cmd.kind.request()
                    && cmd.size == SizeField::Exact
                    && cmd.place == Place::Buf
                {
                    ok_shape += 1;
                }
            }
        }
        for k in CmdKind::ALL {
            assert!(cmds.contains(&k), "{k:?} never generated");
        }
        for s in [
            "Open",
            "Ioctl",
            "Mmap",
            "Munmap",
            "Poll",
            "Close",
            "Dup",
            "Fork",
            "Uring",
            "EpollAdd",
            "UffdRearm",
        ] {
            assert!(steps.contains(s), "{s} never generated: {steps:?}");
        }
        assert!(sync > 100 && cancel > 20, "{sync} {cancel}");
        // Mostly valid: most commands keep their number, size and place.
        assert!(ok_shape > 15_000, "{ok_shape}");
    }

    #[test]
    fn empty_table_leads_to_setup() {
        let v = View::empty();
        let mut g = Generator::new(5, 25);
        let opens = (0..200)
            .filter(|_| matches!(g.next(&v), Op::Open { .. }))
            .count();
        assert!(opens > 60, "{opens}");
    }

    #[test]
    fn render_bus_make_layout() {
        let spec = CmdSpec::new(CmdKind::BusMake, 0)
            .item(ItemSpec::str(ITEM_MAKE_NAME, "0-fuzz0"))
            .item(ItemSpec::new(
                ITEM_BLOOM_PARAMETER,
                Payload::U64s(vec![64, 8]),
            ));
        let r = render(&spec, &mut Fake);
        assert_eq!(r.request, 0x4018_9500);
        // 24 + ALIGN8(16 + 8) + 32
        assert_eq!(r.cmd.size(), 24 + 24 + 32);
        let items = r.cmd.items().collect_items().unwrap();
        assert_eq!(items[0].as_str(), Some("0-fuzz0"));
        assert_eq!(items[1].as_bloom_parameter(), Some((64, 8)));
        // The buffer is padded beyond the size so reads never overrun.
        assert!(r.cmd.len() >= 24 + 64);
    }

    #[test]
    fn render_sizes_and_padding() {
        let mut spec = CmdSpec::new(CmdKind::NameAcquire, 0).item(ItemSpec::str(ITEM_NAME, "a.b"));
        spec.size = SizeField::Unpadded;
        let r = render(&spec, &mut Fake);
        assert_eq!(r.cmd.size(), 24 + 16 + 4);
        spec.size = SizeField::Value(30_000);
        let r = render(&spec, &mut Fake);
        assert_eq!(r.cmd.size(), 30_000);
        assert!(r.cmd.len() >= 30_000);
        spec.size = SizeField::Value(u64::MAX);
        let r = render(&spec, &mut Fake);
        assert!(r.cmd.len() < 40 << 10);
        spec.items[0].size = SizeField::Delta(-2);
        let r = render(&spec, &mut Fake);
        assert_eq!(r.cmd.u64_at(24), 16 + 4 - 2);
    }

    #[test]
    fn render_send_message() {
        let v = rich_view();
        let me = v.slots[5].clone();
        let mut g = Generator::new(3, 0);
        let (cmd, _) = g.send_to(&v, &me, Mode::Reply((11, 5)));
        let r = render(&cmd, &mut Fake);
        let m = r.msg.as_ref().unwrap();
        assert_eq!(m.u64_at(24), 11); // dst_id
        assert_eq!(m.u64_at(56), 5); // cookie_reply
        assert_eq!(r.cmd.u64_at(24), 0x30_1000 + "Buf".len() as u64);
        let (cmd, _) = g.send_to(&v, &me, Mode::Sync);
        assert_eq!(cmd.flags, SEND_SYNC_REPLY);
        let r = render(&cmd, &mut Fake);
        let m = r.msg.as_ref().unwrap();
        assert_eq!(m.flags() & MSG_EXPECT_REPLY, MSG_EXPECT_REPLY);
        assert!(m.u64_at(56) > 0);
        assert_eq!(SLOTS, v.slots.len());
    }
}
