// SPDX-License-Identifier: GPL-2.0

//! kdbusfs (spec: fs.md): the filesystem type, its superblock, the node tree
//! and the file operations that hand every call to a [`Handle`].
//!
//! Directories (the domain root and buses) are plain dcache directories
//! served by libfs (`simple_dir_operations`); the kernel keeps them pinned
//! until a bus is torn down (`simple_recursive_removal`) or the superblock
//! dies (`kill_litter_super`). Files (`control`, endpoints) carry a
//! [`Node`] in `i_private`, freed when the inode is evicted.

use crate::bindings;
use crate::domain::Domain;
use crate::endpoint::Endpoint;
use crate::errno::{Errno, Result, EEXIST, ENOMEM, ESHUTDOWN};
use crate::error::to_ret;
use crate::handle::Handle;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_uint};
use core::ptr;
use kernel::prelude::*;
use kernel::sync::Arc;

/// `KDBUS_SUPER_MAGIC` ("DBus").
const KDBUS_SUPER_MAGIC: usize = 0x44427573;
const S_IFDIR: u16 = 0o040000;
const S_IFREG: u16 = 0o100000;

/// What a kdbus file stands for.
pub(crate) enum Node {
    /// The domain's `control` file.
    Control(Arc<Domain>),
    /// An endpoint file of a bus.
    Endpoint(Arc<Endpoint>),
}

impl Node {
    fn clone_ref(&self) -> Node {
        match self {
            Node::Control(d) => Node::Control(d.clone()),
            Node::Endpoint(e) => Node::Endpoint(e.clone()),
        }
    }

    fn is_active(&self) -> bool {
        match self {
            Node::Control(d) => d.is_active(),
            Node::Endpoint(e) => e.is_active(),
        }
    }
}

/// A dentry in the kdbusfs tree, pinned by the reference this object holds.
///
/// # Invariants
///
/// `0` is a positive dentry; the reference is released by [`remove_tree`].
pub(crate) struct NodeDentry(*mut bindings::dentry);

// SAFETY: dentry references may be passed between threads.
unsafe impl Send for NodeDentry {}

impl NodeDentry {
    /// The raw dentry, valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut bindings::dentry {
        self.0
    }

    /// Leaves the pin in the tree: the dentry stays until its directory is
    /// removed or the superblock is killed, which drop the pin.
    fn leave_in_tree(self) {}
}

/// Statics the kernel takes pointers to. Their `owner` fields point at this
/// module so open files and mounts pin it.
#[repr(transparent)]
struct KernelStatic<T>(UnsafeCell<T>);

// SAFETY: the kernel serialises its own writes (the registration list of a
// file_system_type); Rust never accesses the contents.
unsafe impl<T> Sync for KernelStatic<T> {}

impl<T> KernelStatic<T> {
    const fn get(&self) -> *mut T {
        self.0.get()
    }
}

/// This module, for the `owner` fields (only its address is taken).
const THIS_MODULE_PTR: *mut bindings::module = &raw mut bindings::__this_module;

static FS_TYPE: KernelStatic<bindings::file_system_type> =
    KernelStatic(UnsafeCell::new(bindings::file_system_type {
        name: c"kdbusfs".as_ptr().cast(),
        init_fs_context: Some(init_fs_context),
        kill_sb: Some(kill_sb),
        fs_flags: bindings::FS_USERNS_MOUNT as c_int,
        owner: THIS_MODULE_PTR,
        // SAFETY: all-zero is valid for the remaining (pointer/list) fields.
        ..unsafe { core::mem::zeroed() }
    }));

static FC_OPS: KernelStatic<bindings::fs_context_operations> =
    KernelStatic(UnsafeCell::new(bindings::fs_context_operations {
        get_tree: Some(get_tree),
        // SAFETY: all-zero means "no callback" for the other operations.
        ..unsafe { core::mem::zeroed() }
    }));

static SUPER_OPS: KernelStatic<bindings::super_operations> =
    KernelStatic(UnsafeCell::new(bindings::super_operations {
        statfs: Some(bindings::simple_statfs),
        drop_inode: Some(bindings::generic_delete_inode),
        evict_inode: Some(evict_inode),
        // SAFETY: all-zero means "no callback" for the other operations.
        ..unsafe { core::mem::zeroed() }
    }));

static NODE_FOPS: KernelStatic<bindings::file_operations> =
    KernelStatic(UnsafeCell::new(bindings::file_operations {
        owner: THIS_MODULE_PTR,
        open: Some(node_open),
        release: Some(node_release),
        unlocked_ioctl: Some(node_ioctl),
        compat_ioctl: Some(node_ioctl),
        mmap: Some(node_mmap),
        poll: Some(node_poll),
        llseek: Some(bindings::noop_llseek),
        // SAFETY: all-zero means "not supported" for the other operations.
        ..unsafe { core::mem::zeroed() }
    }));

/// Whether `file` is a kdbus file (a control or endpoint node).
///
/// # Safety
///
/// `file` is a live file.
pub(crate) unsafe fn is_kdbus_file(file: *mut bindings::file) -> bool {
    // SAFETY: `file` is live (contract).
    unsafe { core::ptr::eq((*file).f_op, NODE_FOPS.get().cast_const()) }
}

/// Inode numbers: node ids, the smallest free number from 1, module-wide
/// (fs.md 3.1). Initialised by [`register`].
static INO_IDA: KernelStatic<bindings::ida> =
    // SAFETY: all-zero is a valid bit pattern; `register` initialises it
    // before any use.
    KernelStatic(UnsafeCell::new(unsafe { core::mem::zeroed() }));

/// Registers kdbusfs and creates its mount point `/sys/fs/kdbus`.
pub(crate) fn register() -> Result {
    // SAFETY: nothing uses the allocator before the filesystem exists.
    unsafe { bindings::kdbus_ida_init(INO_IDA.get()) };
    // SAFETY: FS_TYPE is a static, fully initialised file_system_type.
    let ret = unsafe { bindings::register_filesystem(FS_TYPE.get()) };
    if ret < 0 {
        return Err(Errno(-ret));
    }
    // SAFETY: `fs_kobj` is the kernel's live /sys/fs kobject.
    let ret =
        unsafe { bindings::sysfs_create_mount_point(bindings::fs_kobj, c"kdbus".as_ptr().cast()) };
    if ret < 0 {
        // SAFETY: registered just above.
        unsafe { bindings::unregister_filesystem(FS_TYPE.get()) };
        return Err(Errno(-ret));
    }
    Ok(())
}

/// Undoes [`register`]. The module cannot be unloaded while a kdbusfs is
/// mounted or a kdbus file is open: both pin it through `owner`.
pub(crate) fn unregister() {
    // SAFETY: created by `register`.
    unsafe { bindings::sysfs_remove_mount_point(bindings::fs_kobj, c"kdbus".as_ptr().cast()) };
    // SAFETY: registered by `register`.
    unsafe { bindings::unregister_filesystem(FS_TYPE.get()) };
    // SAFETY: every inode is gone (no mount is left), so no id is in use.
    unsafe { bindings::ida_destroy(INO_IDA.get()) };
}

/// `file_system_type.init_fs_context`.
///
/// # Safety
///
/// `fc` is a live filesystem context being set up for kdbusfs.
unsafe extern "C" fn init_fs_context(fc: *mut kernel::bindings::fs_context) -> c_int {
    // SAFETY: `fc` is the live context being set up; FC_OPS is static.
    // The kernel crate declares `fs_context` opaque; ours has its fields.
    unsafe { (*fc.cast::<bindings::fs_context>()).ops = FC_OPS.get().cast_const() };
    0
}

/// `fs_context_operations.get_tree`.
///
/// # Safety
///
/// `fc` is a live kdbusfs filesystem context.
unsafe extern "C" fn get_tree(fc: *mut bindings::fs_context) -> c_int {
    // SAFETY: `fc` is live; every mount gets a new superblock (a new domain).
    unsafe { bindings::get_tree_nodev(fc, Some(fill_super)) }
}

/// Allocates an inode on `sb`.
///
/// # Safety
///
/// `sb` is a live kdbusfs superblock.
unsafe fn new_inode(
    sb: *mut bindings::super_block,
    mode: u16,
    uid: bindings::kuid_t,
    gid: bindings::kgid_t,
) -> Result<*mut bindings::inode> {
    // SAFETY: the allocator is initialised (register).
    let ino =
        unsafe { bindings::ida_alloc_range(INO_IDA.get(), 1, i32::MAX as _, bindings::GFP_KERNEL) };
    if ino < 0 {
        return Err(Errno(-ino));
    }
    // SAFETY: `sb` is live (contract).
    let inode = unsafe { bindings::new_inode(sb) };
    if inode.is_null() {
        // SAFETY: allocated above, not handed out.
        unsafe { bindings::ida_free(INO_IDA.get(), ino as _) };
        return Err(ENOMEM);
    }
    // SAFETY: a fresh inode, ours until it is instantiated; evict_inode
    // frees its number.
    unsafe {
        (*inode).i_ino = ino as _;
        (*inode).i_mode = mode;
        (*inode).i_uid = uid;
        (*inode).i_gid = gid;
        bindings::simple_inode_init_ts(inode);
        if mode & S_IFDIR != 0 {
            (*inode).i_op = &raw const bindings::simple_dir_inode_operations;
            (*inode).__bindgen_anon_3.i_fop = &raw const bindings::simple_dir_operations;
            bindings::set_nlink(inode, 2);
        } else {
            (*inode).__bindgen_anon_3.i_fop = NODE_FOPS.get().cast_const();
        }
    }
    Ok(inode)
}

/// Sets up a new superblock: a new domain with its `control` file.
///
/// # Safety
///
/// `sb` is a fresh superblock and `fc` the live context it is made for.
unsafe extern "C" fn fill_super(
    sb: *mut bindings::super_block,
    fc: *mut bindings::fs_context,
) -> c_int {
    // SAFETY: called by get_tree_nodev with a fresh superblock and live `fc`.
    match unsafe { fill_super_inner(sb, fc) } {
        Ok(()) => 0,
        Err(e) => -e.0,
    }
}

/// # Safety
///
/// As [`fill_super`].
unsafe fn fill_super_inner(
    sb: *mut bindings::super_block,
    fc: *mut bindings::fs_context,
) -> Result {
    // SAFETY: `sb` is a fresh superblock we may set up (contract).
    unsafe {
        (*sb).s_blocksize = kernel::page::PAGE_SIZE as _;
        (*sb).s_blocksize_bits = kernel::page::PAGE_SHIFT as _;
        (*sb).s_magic = KDBUS_SUPER_MAGIC;
        (*sb).s_op = SUPER_OPS.get().cast_const();
        (*sb).s_time_gran = 1;
    }
    // SAFETY: `fc->user_ns` is the live namespace of the mounting task.
    let user_ns = unsafe { crate::cred::UserNs::get((*fc).user_ns) };
    let domain = Domain::new(user_ns)?;
    // SAFETY: ownership of one reference moves into `s_fs_info`; kill_sb
    // (always called, even when fill_super fails) takes it back.
    unsafe { (*sb).s_fs_info = Arc::into_raw(domain.clone()).cast_mut().cast() };

    let root_uid = bindings::kuid_t { val: 0 };
    let root_gid = bindings::kgid_t { val: 0 };
    // SAFETY: `sb` is live.
    let inode = unsafe { new_inode(sb, S_IFDIR | 0o555, root_uid, root_gid)? };
    // SAFETY: `inode` is fresh; d_make_root consumes it even on failure.
    let root = unsafe { bindings::d_make_root(inode) };
    if root.is_null() {
        return Err(ENOMEM);
    }
    // SAFETY: `sb` is live.
    unsafe { (*sb).s_root = root };
    domain.set_root(root);
    // The control file's dentry stays pinned until kill_litter_super.
    let control = create_file(
        root,
        b"control",
        S_IFREG | 0o666,
        root_uid,
        root_gid,
        Node::Control(domain),
    )?;
    control.leave_in_tree();
    Ok(())
}

/// `file_system_type.kill_sb`: tears the domain down.
///
/// # Safety
///
/// `sb` is a kdbusfs superblock being destroyed.
unsafe extern "C" fn kill_sb(sb: *mut bindings::super_block) {
    // SAFETY: `sb` is a kdbusfs superblock being destroyed.
    let info = unsafe { (*sb).s_fs_info };
    let domain = if info.is_null() {
        None
    } else {
        // SAFETY: set by fill_super from `Arc::into_raw`, taken back once.
        Some(unsafe { Arc::from_raw(info.cast_const().cast::<Domain>()) })
    };
    if let Some(d) = &domain {
        d.deactivate();
    }
    // SAFETY: `sb` is live; this drops the pinned dentries and the inodes.
    unsafe { bindings::kill_litter_super(sb) };
    drop(domain);
}

/// `super_operations.evict_inode`: frees the inode's [`Node`].
///
/// # Safety
///
/// `inode` is a kdbusfs inode being evicted.
unsafe extern "C" fn evict_inode(inode: *mut bindings::inode) {
    // SAFETY: `inode` is being evicted; nobody else uses it.
    unsafe {
        bindings::truncate_inode_pages_final(&raw mut (*inode).i_data);
        bindings::clear_inode(inode);
        bindings::ida_free(INO_IDA.get(), (*inode).i_ino as _);
        let node = (*inode).i_private;
        if !node.is_null() {
            (*inode).i_private = ptr::null_mut();
            drop(KBox::from_raw(node.cast::<Node>()));
        }
    }
}

/// Creates `name` under `parent` (whose inode we lock), instantiated with an
/// inode of `mode`. Returns the new dentry with the lookup reference, which
/// pins it.
fn create(
    parent: *mut bindings::dentry,
    name: &[u8],
    mode: u16,
    uid: bindings::kuid_t,
    gid: bindings::kgid_t,
    node: Option<Node>,
) -> Result<NodeDentry> {
    let node = match node {
        Some(n) => KBox::into_raw(KBox::new(n, GFP_KERNEL)?),
        None => ptr::null_mut(),
    };
    let drop_node = |node: *mut Node| {
        if !node.is_null() {
            // SAFETY: `node` came from `KBox::into_raw` and was not handed on.
            drop(unsafe { KBox::from_raw(node) });
        }
    };
    // SAFETY: `parent` is a live, pinned directory dentry of kdbusfs.
    let dir = unsafe { (*parent).d_inode };
    // SAFETY: as above; the parent's inode lock serialises lookups.
    unsafe { bindings::kdbus_inode_lock(dir) };
    let result = (|| {
        // SAFETY: the parent is locked, `name` is valid for `name.len()`.
        let dentry =
            unsafe { bindings::lookup_one_len(name.as_ptr().cast(), parent, name.len() as _) };
        let dentry = kernel::error::from_err_ptr(dentry).map_err(Errno::from)?;
        // SAFETY: `dentry` is a live dentry we hold a reference to.
        if unsafe { !(*dentry).d_inode.is_null() } {
            // SAFETY: drop our reference.
            unsafe { bindings::dput(dentry) };
            return Err(EEXIST);
        }
        // SAFETY: `parent`'s superblock is live.
        let inode = match unsafe { new_inode((*parent).d_sb, mode, uid, gid) } {
            Ok(i) => i,
            Err(e) => {
                // SAFETY: drop our reference to the negative dentry.
                unsafe { bindings::dput(dentry) };
                return Err(e);
            }
        };
        // SAFETY: fresh inode; the node box moves into it.
        unsafe {
            (*inode).i_private = node.cast();
            if mode & S_IFDIR != 0 {
                bindings::inc_nlink(dir);
            }
            bindings::d_instantiate(dentry, inode);
        }
        Ok(NodeDentry(dentry))
    })();
    // SAFETY: locked above.
    unsafe { bindings::kdbus_inode_unlock(dir) };
    if result.is_err() {
        drop_node(node);
    }
    result
}

fn create_file(
    parent: *mut bindings::dentry,
    name: &[u8],
    mode: u16,
    uid: bindings::kuid_t,
    gid: bindings::kgid_t,
    node: Node,
) -> Result<NodeDentry> {
    create(parent, name, mode, uid, gid, Some(node))
}

/// Creates a bus directory under the domain root.
pub(crate) fn create_dir(
    domain: &Domain,
    name: &[u8],
    perm: u16,
    uid: bindings::kuid_t,
    gid: bindings::kgid_t,
) -> Result<NodeDentry> {
    let root = domain.root().ok_or(ESHUTDOWN)?;
    create(root, name, S_IFDIR | perm, uid, gid, None)
}

/// Creates an endpoint file in a bus directory; it stays pinned until the
/// directory is removed.
pub(crate) fn create_endpoint_file(
    dir: *mut bindings::dentry,
    name: &[u8],
    perm: u16,
    uid: bindings::kuid_t,
    gid: bindings::kgid_t,
    ep: Arc<Endpoint>,
) -> Result {
    let d = create_file(dir, name, S_IFREG | perm, uid, gid, Node::Endpoint(ep))?;
    // The pin is dropped by simple_recursive_removal of the directory.
    d.leave_in_tree();
    Ok(())
}

/// Unlinks a directory and everything below it, dropping their pins.
pub(crate) fn remove_tree(d: NodeDentry) {
    // SAFETY: `d.0` is pinned by us (type invariant); the removal drops that
    // pin and every pin below it.
    unsafe { bindings::simple_recursive_removal(d.0, None) };
}

/// The handle stored in an open file.
///
/// # Safety
///
/// `file` is a live kdbus file whose `open` succeeded.
unsafe fn handle<'a>(file: *mut bindings::file) -> &'a Handle {
    // SAFETY: set by node_open to a pinned Handle freed only by release.
    unsafe { &*((*file).private_data as *const Handle) }
}

/// `open` of `control` and endpoint files: a new unset [`Handle`].
///
/// # Safety
///
/// `inode` is a kdbusfs file inode and `file` the file being opened on it.
unsafe extern "C" fn node_open(inode: *mut bindings::inode, file: *mut bindings::file) -> c_int {
    // SAFETY: the VFS passes a live inode of ours with its Node.
    let node = unsafe { &*((*inode).i_private as *const Node) };
    if !node.is_active() {
        return -ESHUTDOWN.0;
    }
    let handle = match KBox::pin_init(Handle::new(node.clone_ref(), file), GFP_KERNEL) {
        Ok(h) => h,
        Err(_) => return -ENOMEM.0,
    };
    // SAFETY: the handle is never moved out of its box; release frees it.
    let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(handle) });
    // SAFETY: `file` is being opened; private_data is ours.
    unsafe { (*file).private_data = raw.cast() };
    0
}

/// `release`: tears down what the handle made and frees it.
///
/// # Safety
///
/// `file` was opened by [`node_open`] and this is its last reference.
unsafe extern "C" fn node_release(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: last reference to `file`; private_data holds our handle.
    let handle = unsafe { KBox::from_raw((*file).private_data as *mut Handle) };
    handle.release();
    drop(handle);
    0
}

/// `unlocked_ioctl` and `compat_ioctl` (the ABI has the same layout for both).
///
/// # Safety
///
/// `file` was opened by [`node_open`].
unsafe extern "C" fn node_ioctl(file: *mut bindings::file, cmd: c_uint, arg: usize) -> isize {
    // SAFETY: `file` is open.
    to_ret(unsafe { handle(file) }.ioctl(cmd, arg))
}

/// `mmap`: maps a connection's pool.
///
/// # Safety
///
/// `file` was opened by [`node_open`]; `vma` is the area being mapped.
unsafe extern "C" fn node_mmap(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: `file` is open; `vma` is the area being mapped.
    match unsafe { handle(file).mmap(vma) } {
        Ok(()) => 0,
        Err(e) => -e.0,
    }
}

/// `poll`.
///
/// # Safety
///
/// `file` was opened by [`node_open`]; `pt` is the poll table of the call.
unsafe extern "C" fn node_poll(
    file: *mut bindings::file,
    pt: *mut bindings::poll_table_struct,
) -> c_uint {
    // SAFETY: `file` is open; `pt` is the poll table of this call.
    unsafe { handle(file).poll(file, pt) }
}
