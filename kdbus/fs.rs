// SPDX-License-Identifier: GPL-2.0

//! kdbusfs (spec: fs.md): what its nodes stand for, and the one place nodes
//! are published. Objects never call up into the filesystem: a bus or an
//! endpoint holds the [`vfs::Node`] handle of its node, whose drop removes
//! it; creating them is done here, by the handle that made the object. The
//! VFS mechanics are in `glue/vfs.rs`.

use crate::bus::Bus;
use crate::domain::Domain;
use crate::endpoint::Endpoint;
use crate::glue::cred::{Kgid, Kuid, UserNamespace};
use crate::glue::file::File;
use crate::glue::poll::PollTable;
use crate::glue::vfs::{self, FsOps};
use crate::glue::vma::VmaNew;
use crate::handle::Handle;
use crate::proto::errno::{Result, ESHUTDOWN};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::ARef;

/// A directory of kdbusfs.
pub(crate) type Dir = vfs::Dir<Kdbusfs>;
/// A published node of kdbusfs, removed when dropped.
pub(crate) type Node = vfs::Node<Kdbusfs>;

/// What a kdbus file stands for.
pub(crate) enum FileNode {
    /// The domain's `control` file.
    Control(Arc<Domain>),
    /// An endpoint file of a bus.
    Endpoint(Arc<Endpoint>),
}

impl FileNode {
    fn is_active(&self) -> bool {
        match self {
            FileNode::Control(d) => d.is_active(),
            FileNode::Endpoint(e) => e.is_active(),
        }
    }
}

/// The filesystem type.
pub(crate) struct Kdbusfs;

static KDBUSFS: vfs::Filesystem<Kdbusfs> = vfs::Filesystem::new(c"kdbusfs");

/// Registers kdbusfs and its mount point `/sys/fs/kdbus`.
pub(crate) fn register() -> Result {
    KDBUSFS.register(c"kdbus")
}

/// Undoes [`register`].
pub(crate) fn unregister() {
    KDBUSFS.unregister(c"kdbus");
}

impl FsOps for Kdbusfs {
    type Domain = Domain;
    type Node = FileNode;
    type Handle = Handle;

    fn filesystem() -> &'static vfs::Filesystem<Self> {
        &KDBUSFS
    }

    /// A new mount: a new domain with its `control` file (fs.md 2, 3).
    fn fill_super(user_ns: ARef<UserNamespace>, root: Dir) -> Result<Arc<Domain>> {
        let domain = Domain::new(user_ns, root.clone())?;
        let control = root.create_file(
            b"control",
            0o666,
            Kuid::ROOT,
            Kgid::ROOT,
            FileNode::Control(domain.clone()),
        )?;
        // The control file goes with the superblock (kill_litter_super).
        control.leave_in_tree();
        Ok(domain)
    }

    fn kill_super(domain: Arc<Domain>) {
        domain.deactivate();
    }

    fn open(node: &FileNode, _file: &File) -> Result<Pin<KBox<Handle>>> {
        if !node.is_active() {
            return Err(ESHUTDOWN);
        }
        Handle::new(match node {
            FileNode::Control(d) => FileNode::Control(d.clone()),
            FileNode::Endpoint(e) => FileNode::Endpoint(e.clone()),
        })
    }

    fn release(handle: Pin<KBox<Handle>>, _file: &File) {
        handle.release();
    }

    fn ioctl(handle: &Handle, file: &File, cmd: u32, arg: usize) -> Result {
        handle.ioctl(file, cmd, arg)
    }

    fn mmap(handle: &Handle, _file: &File, vma: &VmaNew) -> Result {
        handle.mmap(vma)
    }

    fn poll(handle: &Handle, file: &File, pt: &mut PollTable<'_>) -> u32 {
        handle.poll(file, pt)
    }
}

/// Publishes a custom endpoint (endpoint.md 2): its file in the bus
/// directory. On failure nothing stays published.
pub(crate) fn publish_endpoint(ep: &Arc<Endpoint>) -> Result {
    let dir = ep.bus.dir().ok_or(ESHUTDOWN)?;
    let file = dir.create_file(
        ep.name(),
        ep.file_mode(),
        ep.uid,
        ep.gid,
        FileNode::Endpoint(ep.clone()),
    )?;
    ep.set_node(file)
}

/// Publishes a new bus (fs.md 3): its directory `<uid>-<name>` in the
/// domain root and its default endpoint file `bus`, with the modes and
/// owners BUS_MAKE asked for. On failure nothing stays published.
pub(crate) fn publish_bus(bus: &Arc<Bus>) -> Result {
    let root = bus.domain.root().ok_or(ESHUTDOWN)?;
    let dir = root.create_dir(bus.name(), bus.dir_mode(), bus.uid, bus.gid)?;
    let ep = bus.default_endpoint().ok_or(ESHUTDOWN)?;
    let file = dir.dir().create_file(
        b"bus",
        bus.file_mode(),
        bus.uid,
        bus.gid,
        FileNode::Endpoint(ep.clone()),
    )?;
    ep.set_node(file)?;
    bus.set_node(dir)
}
