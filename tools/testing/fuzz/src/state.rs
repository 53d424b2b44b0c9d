//! What the generator may know about a process's descriptor table: a
//! snapshot the executor takes before each step.

/// Number of descriptor slots per process (small, so threads collide on
/// the same descriptors).
pub const SLOTS: usize = 16;

/// What a slot holds, as far as the fuzzer knows (a racing thread may have
/// changed it since).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlotKind {
    /// Nothing.
    #[default]
    Empty,
    /// An unset handle on `control`.
    Control,
    /// A bus owner (successful BUS_MAKE).
    BusOwner,
    /// An unset handle on a bus's default endpoint.
    Endpoint,
    /// An unset handle on a custom endpoint.
    CustomEndpoint,
    /// An endpoint owner (successful ENDPOINT_MAKE).
    EndpointOwner,
    /// A connection (successful HELLO).
    Conn,
    /// An io_uring made by the fuzzer (possibly holding kdbus files).
    Ring,
    /// Anything else: a directory, a handle whose node is gone ...
    Other,
}

/// One slot of the snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotView {
    /// What it holds.
    pub kind: SlotKind,
    /// Index of its bus (`0-fuzz<bus>`), where it has one.
    pub bus: u8,
    /// Connections: unique ID.
    pub id: u64,
    /// Connections: HELLO flags.
    pub hello_flags: u64,
    /// Connections: pool size.
    pub pool_size: u64,
    /// Connections: the bus's bloom size (64 until known).
    pub bloom: u64,
    /// Connections: the pool is mapped.
    pub mapped: bool,
    /// Connections: BYEBYE succeeded or a command said ECONNRESET;
    /// handles: a setup command said ESHUTDOWN.
    pub dead: bool,
    /// Connections: pool offsets of slices to FREE, latest last.
    pub offsets: Vec<u64>,
    /// Connections: received calls `(src_id, cookie)` awaiting a reply.
    pub calls: Vec<(u64, u64)>,
}

/// The snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct View {
    /// Exactly [`SLOTS`] entries.
    pub slots: Vec<SlotView>,
    /// The highest connection ID seen so far (IDs are sequential per
    /// domain, so IDs near it likely belong to other processes' peers).
    pub max_id: u64,
}

impl View {
    /// An empty table.
    #[cfg(test)]
    pub fn empty() -> View {
        View {
            slots: vec![SlotView::default(); SLOTS],
            max_id: 0,
        }
    }

    /// Indices of slots holding one of `kinds`.
    pub fn of_kind(&self, kinds: &[SlotKind]) -> Vec<u8> {
        (0..self.slots.len())
            .filter(|&i| kinds.contains(&self.slots[i].kind))
            .map(|i| i as u8)
            .collect()
    }

    /// Indices of live connections.
    pub fn live_conns(&self) -> Vec<u8> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].kind == SlotKind::Conn && !self.slots[i].dead)
            .map(|i| i as u8)
            .collect()
    }

    /// Indices of occupied slots.
    pub fn occupied(&self) -> Vec<u8> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].kind != SlotKind::Empty)
            .map(|i| i as u8)
            .collect()
    }

    /// Indices of empty slots.
    pub fn free(&self) -> Vec<u8> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].kind == SlotKind::Empty)
            .map(|i| i as u8)
            .collect()
    }

    /// Indices of connections with a mapped pool.
    pub fn mapped(&self) -> Vec<u8> {
        (0..self.slots.len())
            .filter(|&i| self.slots[i].mapped)
            .map(|i| i as u8)
            .collect()
    }

    /// IDs of the live connections on `bus`, except `not`.
    pub fn peer_ids(&self, bus: u8, not: u64) -> Vec<u64> {
        self.slots
            .iter()
            .filter(|s| s.kind == SlotKind::Conn && !s.dead && s.bus == bus && s.id != not)
            .map(|s| s.id)
            .collect()
    }

    /// IDs of every known connection.
    pub fn all_ids(&self) -> Vec<u64> {
        self.slots
            .iter()
            .filter(|s| s.kind == SlotKind::Conn)
            .map(|s| s.id)
            .collect()
    }
}
