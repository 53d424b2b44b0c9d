// SPDX-License-Identifier: GPL-2.0

//! The VFS mechanics of kdbusfs: the filesystem type, superblocks, inodes and
//! nodes (dentries), and the file operations, which turn the kernel's raw
//! pointers into [`File`], [`VmaNew`] and [`PollTable`] at once and hand
//! every call to an [`FsOps`] implementation (`crate::fs`).
//!
//! Directories are plain dcache directories served by libfs
//! (`simple_dir_operations`): nodes are created with `lookup_one_len` +
//! `d_instantiate` under the parent's inode lock and stay pinned by that
//! lookup reference, like ramfs and binderfs, until [`Node`] is dropped
//! (`simple_recursive_removal`) or the superblock dies (`kill_litter_super`).
//! Files carry an `F::Node` in `i_private`, freed when the inode is evicted;
//! inode numbers come from a module-wide `ida` (fs.md 3.1: smallest free
//! number from 1).

use super::bindings;
use super::cred::{Kgid, Kuid, UserNamespace};
use super::error::{check, to_ret};
use super::file::File;
use super::gfp;
use super::poll::PollTable;
use super::vma::VmaNew;
use crate::proto::errno::{Result, EEXIST, ENOMEM};
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_uint};
use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicPtr, Ordering};
use kernel::prelude::*;
use kernel::sync::Arc;
use kernel::types::ARef;

/// `KDBUS_SUPER_MAGIC` ("DBus"; fs.md 1).
const KDBUS_SUPER_MAGIC: usize = 0x44427573;
const S_IFDIR: u16 = 0o040000;
const S_IFREG: u16 = 0o100000;

/// What kdbusfs does; the glue does the rest.
pub(crate) trait FsOps: Sized + 'static {
    /// Per-superblock state (a kdbus domain).
    type Domain: Send + Sync;
    /// What a file node stands for (`i_private`).
    type Node: Send + Sync;
    /// The state of an open file (`private_data`).
    type Handle: Send + Sync;

    /// The registered filesystem.
    fn filesystem() -> &'static Filesystem<Self>;
    /// A new superblock was made by a mount in `user_ns`; `root` is its root
    /// directory, where the domain publishes its first nodes.
    fn fill_super(user_ns: ARef<UserNamespace>, root: Dir<Self>) -> Result<Arc<Self::Domain>>;
    /// The superblock dies; runs before its remaining nodes are removed.
    fn kill_super(domain: Arc<Self::Domain>);
    /// `open()` of a file node.
    fn open(node: &Self::Node, file: &File) -> Result<Pin<KBox<Self::Handle>>>;
    /// The last reference to an open file is gone.
    fn release(handle: Pin<KBox<Self::Handle>>, file: &File);
    /// `ioctl()`.
    fn ioctl(handle: &Self::Handle, file: &File, cmd: u32, arg: usize) -> Result;
    /// `mmap()`.
    fn mmap(handle: &Self::Handle, file: &File, vma: &VmaNew) -> Result;
    /// `poll()`.
    fn poll(handle: &Self::Handle, file: &File, pt: &mut PollTable<'_>) -> u32;
}

/// This module, for the `owner` fields (only its address is taken).
const THIS_MODULE_PTR: *mut bindings::module = &raw mut bindings::__this_module;

/// The registered kdbusfs type, for [`is_kdbusfs`].
static REGISTERED: AtomicPtr<bindings::file_system_type> = AtomicPtr::new(ptr::null_mut());

/// Whether `fs_type` is kdbusfs.
pub(super) fn is_kdbusfs(fs_type: *mut bindings::file_system_type) -> bool {
    !fs_type.is_null() && ptr::eq(fs_type, REGISTERED.load(Ordering::Acquire))
}

/// The kernel structures of a filesystem type, in a static. Their `owner`
/// fields point at this module, so mounts and open files pin it.
pub(crate) struct Filesystem<F: FsOps> {
    fs_type: UnsafeCell<bindings::file_system_type>,
    fc_ops: UnsafeCell<bindings::fs_context_operations>,
    super_ops: UnsafeCell<bindings::super_operations>,
    fops: UnsafeCell<bindings::file_operations>,
    ino_ida: UnsafeCell<bindings::ida>,
    _ops: PhantomData<F>,
}

// SAFETY: the kernel serialises its own accesses (the registration list of
// a file_system_type, the ida's lock); Rust never touches the contents after
// `register`.
unsafe impl<F: FsOps> Sync for Filesystem<F> {}

impl<F: FsOps> Filesystem<F> {
    /// The structures for a filesystem type named `name`.
    pub(crate) const fn new(name: &'static core::ffi::CStr) -> Self {
        Filesystem {
            fs_type: UnsafeCell::new(bindings::file_system_type {
                name: name.as_ptr().cast(),
                init_fs_context: Some(init_fs_context::<F>),
                kill_sb: Some(kill_sb::<F>),
                fs_flags: bindings::FS_USERNS_MOUNT as c_int,
                owner: THIS_MODULE_PTR,
                // SAFETY: all-zero is valid for the remaining fields.
                ..unsafe { core::mem::zeroed() }
            }),
            fc_ops: UnsafeCell::new(bindings::fs_context_operations {
                get_tree: Some(get_tree::<F>),
                // SAFETY: all-zero means "no callback".
                ..unsafe { core::mem::zeroed() }
            }),
            super_ops: UnsafeCell::new(bindings::super_operations {
                statfs: Some(bindings::simple_statfs),
                drop_inode: Some(bindings::generic_delete_inode),
                evict_inode: Some(evict_inode::<F>),
                // SAFETY: all-zero means "no callback".
                ..unsafe { core::mem::zeroed() }
            }),
            fops: UnsafeCell::new(bindings::file_operations {
                owner: THIS_MODULE_PTR,
                open: Some(node_open::<F>),
                release: Some(node_release::<F>),
                unlocked_ioctl: Some(node_ioctl::<F>),
                compat_ioctl: Some(node_ioctl::<F>),
                mmap: Some(node_mmap::<F>),
                poll: Some(node_poll::<F>),
                llseek: Some(bindings::noop_llseek),
                // SAFETY: all-zero means "not supported".
                ..unsafe { core::mem::zeroed() }
            }),
            // SAFETY: all-zero is a valid bit pattern; `register` initialises
            // it before use.
            ino_ida: UnsafeCell::new(unsafe { core::mem::zeroed() }),
            _ops: PhantomData,
        }
    }

    /// Registers the filesystem type and creates its mount point
    /// `/sys/fs/<mount_point>`.
    pub(crate) fn register(&'static self, mount_point: &'static core::ffi::CStr) -> Result {
        // SAFETY: nothing uses the ida before the filesystem exists.
        unsafe { bindings::kdbus_ida_init(self.ino_ida.get()) };
        REGISTERED.store(self.fs_type.get(), Ordering::Release);
        // SAFETY: a static, fully initialised file_system_type.
        if let Err(e) = check(unsafe { bindings::register_filesystem(self.fs_type.get()) }) {
            REGISTERED.store(ptr::null_mut(), Ordering::Release);
            return Err(e);
        }
        // SAFETY: `fs_kobj` is the kernel's live /sys/fs kobject.
        let ret = unsafe {
            bindings::sysfs_create_mount_point(bindings::fs_kobj, mount_point.as_ptr().cast())
        };
        if let Err(e) = check(ret) {
            // SAFETY: registered just above.
            unsafe { bindings::unregister_filesystem(self.fs_type.get()) };
            REGISTERED.store(ptr::null_mut(), Ordering::Release);
            return Err(e);
        }
        Ok(())
    }

    /// Undoes [`Filesystem::register`]. The module cannot be unloaded while
    /// a mount or an open file exists: both pin it through `owner`.
    pub(crate) fn unregister(&'static self, mount_point: &'static core::ffi::CStr) {
        // SAFETY: created by `register`.
        unsafe {
            bindings::sysfs_remove_mount_point(bindings::fs_kobj, mount_point.as_ptr().cast())
        };
        // SAFETY: registered by `register`.
        unsafe { bindings::unregister_filesystem(self.fs_type.get()) };
        REGISTERED.store(ptr::null_mut(), Ordering::Release);
        // SAFETY: no mount is left, so no inode and no id is in use.
        unsafe { bindings::ida_destroy(self.ino_ida.get()) };
    }
}

/// A counted reference to a directory dentry of kdbusfs.
///
/// # Invariants
///
/// `dentry` is a positive directory dentry on which we hold a reference;
/// its superblock lives until the reference is dropped (owners drop their
/// `Dir`s in [`FsOps::kill_super`] at the latest).
pub(crate) struct Dir<F: FsOps> {
    dentry: NonNull<bindings::dentry>,
    _ops: PhantomData<F>,
}

// SAFETY: dentry references may be used and dropped from any thread.
unsafe impl<F: FsOps> Send for Dir<F> {}
// SAFETY: only thread-safe VFS calls are made through it.
unsafe impl<F: FsOps> Sync for Dir<F> {}

impl<F: FsOps> Clone for Dir<F> {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference (invariant); this takes another.
        unsafe { bindings::kdbus_dget(self.dentry.as_ptr()) };
        Dir {
            dentry: self.dentry,
            _ops: PhantomData,
        }
    }
}

impl<F: FsOps> Drop for Dir<F> {
    fn drop(&mut self) {
        // SAFETY: we own one reference (invariant).
        unsafe { bindings::dput(self.dentry.as_ptr()) };
    }
}

/// A published node (directory or file) that is removed from the tree,
/// with everything below it, when this handle is dropped.
pub(crate) struct Node<F: FsOps> {
    dir: Dir<F>,
}

impl<F: FsOps> Node<F> {
    /// The node as a directory to create children in (for directory nodes).
    pub(crate) fn dir(&self) -> &Dir<F> {
        &self.dir
    }

    /// Keeps the node in the tree for the superblock's lifetime (it goes
    /// with `kill_litter_super`).
    pub(crate) fn leave_in_tree(self) {
        let this = core::mem::ManuallyDrop::new(self);
        // SAFETY: drop only our reference (the `Dir` inside is not dropped);
        // the lookup pin stays in the tree.
        unsafe { bindings::dput(this.dir.dentry.as_ptr()) };
    }
}

impl<F: FsOps> Drop for Node<F> {
    fn drop(&mut self) {
        // SAFETY: the dentry is live (our reference). If it is still in the
        // tree, the removal unhashes it and drops its lookup pin (and those
        // of its children); if a parent's removal already did, it finds it
        // unhashed and only balances its own dget. Our reference goes with
        // `self.dir`.
        unsafe { bindings::simple_recursive_removal(self.dir.dentry.as_ptr(), None) };
    }
}

impl<F: FsOps> Dir<F> {
    /// Creates directory `name` (mode `S_IFDIR | perm`) here.
    pub(crate) fn create_dir(
        &self,
        name: &[u8],
        perm: u16,
        uid: Kuid,
        gid: Kgid,
    ) -> Result<Node<F>> {
        self.create(name, S_IFDIR | (perm & 0o7777), uid, gid, None)
    }

    /// Creates file `name` (mode `S_IFREG | perm`) here, standing for `node`.
    pub(crate) fn create_file(
        &self,
        name: &[u8],
        perm: u16,
        uid: Kuid,
        gid: Kgid,
        node: F::Node,
    ) -> Result<Node<F>> {
        self.create(name, S_IFREG | (perm & 0o7777), uid, gid, Some(node))
    }

    fn create(
        &self,
        name: &[u8],
        mode: u16,
        uid: Kuid,
        gid: Kgid,
        node: Option<F::Node>,
    ) -> Result<Node<F>> {
        let len = u32::try_from(name.len()).map_err(|_| crate::proto::errno::ENAMETOOLONG)?;
        // The node box moves into the inode; freed here on failure.
        let node = match node {
            Some(n) => Some(KBox::new(n, gfp())?),
            None => None,
        };
        let parent = self.dentry.as_ptr();
        // SAFETY: `parent` is a live, positive directory dentry (invariant).
        let dir = unsafe { (*parent).d_inode };
        // SAFETY: as above; the parent's inode lock serialises lookups.
        unsafe { bindings::kdbus_inode_lock(dir) };
        let result = (|| {
            // SAFETY: the parent is locked, `name` is valid for `len` bytes.
            let dentry =
                unsafe { bindings::lookup_one_len(name.as_ptr().cast(), parent, len as _) };
            let dentry =
                kernel::error::from_err_ptr(dentry).map_err(crate::proto::errno::Errno::from)?;
            // SAFETY: `dentry` is a live dentry we hold a reference to.
            if unsafe { !(*dentry).d_inode.is_null() } {
                // SAFETY: drop our reference.
                unsafe { bindings::dput(dentry) };
                return Err(EEXIST);
            }
            // SAFETY: the parent's superblock is live.
            let inode = match unsafe { new_inode::<F>((*parent).d_sb, mode, uid, gid) } {
                Ok(i) => i,
                Err(e) => {
                    // SAFETY: drop our reference to the negative dentry.
                    unsafe { bindings::dput(dentry) };
                    return Err(e);
                }
            };
            // SAFETY: a fresh inode, ours until instantiated; the node box
            // moves into it (freed by evict_inode); the lookup reference
            // becomes the pin and we take one more for the `Node`.
            unsafe {
                if let Some(n) = node {
                    (*inode).i_private = KBox::into_raw(n).cast();
                }
                if mode & S_IFDIR != 0 {
                    bindings::inc_nlink(dir);
                }
                bindings::d_instantiate(dentry, inode);
                bindings::kdbus_dget(dentry);
                Ok(NonNull::new_unchecked(dentry))
            }
        })();
        // SAFETY: locked above.
        unsafe { bindings::kdbus_inode_unlock(dir) };
        result.map(|dentry| Node {
            dir: Dir {
                dentry,
                _ops: PhantomData,
            },
        })
    }
}

/// Allocates an inode on `sb` with a fresh inode number.
///
/// # Safety
///
/// `sb` is a live kdbusfs superblock.
unsafe fn new_inode<F: FsOps>(
    sb: *mut bindings::super_block,
    mode: u16,
    uid: Kuid,
    gid: Kgid,
) -> Result<*mut bindings::inode> {
    let fs = F::filesystem();
    // SAFETY: the ida is initialised (register).
    let ino = check(unsafe {
        bindings::ida_alloc_range(fs.ino_ida.get(), 1, i32::MAX as _, bindings::GFP_KERNEL)
    })?;
    // SAFETY: `sb` is live (contract).
    let inode = unsafe { bindings::new_inode(sb) };
    if inode.is_null() {
        // SAFETY: allocated above, not handed out.
        unsafe { bindings::ida_free(fs.ino_ida.get(), ino as _) };
        return Err(ENOMEM);
    }
    // SAFETY: a fresh inode, ours until it is instantiated; evict_inode
    // frees its number.
    unsafe {
        (*inode).i_ino = ino as _;
        (*inode).i_mode = mode;
        (*inode).i_uid = uid.to_kuid_t();
        (*inode).i_gid = gid.to_kgid_t();
        bindings::simple_inode_init_ts(inode);
        if mode & S_IFDIR != 0 {
            (*inode).i_op = &raw const bindings::simple_dir_inode_operations;
            (*inode).__bindgen_anon_3.i_fop = &raw const bindings::simple_dir_operations;
            bindings::set_nlink(inode, 2);
        } else {
            (*inode).__bindgen_anon_3.i_fop = fs.fops.get().cast_const();
        }
    }
    Ok(inode)
}

/// `file_system_type.init_fs_context`.
///
/// # Safety
///
/// `fc` is a live filesystem context being set up for this type.
unsafe extern "C" fn init_fs_context<F: FsOps>(fc: *mut kernel::bindings::fs_context) -> c_int {
    // SAFETY: `fc` is the live context being set up; the ops are static.
    // The kernel crate declares `fs_context` opaque; ours has its fields.
    unsafe { (*fc.cast::<bindings::fs_context>()).ops = F::filesystem().fc_ops.get().cast_const() };
    0
}

/// `fs_context_operations.get_tree`: every mount gets a new superblock (a
/// new domain).
///
/// # Safety
///
/// `fc` is a live context of this type.
unsafe extern "C" fn get_tree<F: FsOps>(fc: *mut bindings::fs_context) -> c_int {
    // SAFETY: `fc` is live (contract).
    unsafe { bindings::get_tree_nodev(fc, Some(fill_super::<F>)) }
}

/// Sets up a new superblock: its root directory and its domain.
///
/// # Safety
///
/// `sb` is a fresh superblock and `fc` the live context it is made for.
unsafe extern "C" fn fill_super<F: FsOps>(
    sb: *mut bindings::super_block,
    fc: *mut bindings::fs_context,
) -> c_int {
    // SAFETY: `sb` is a fresh superblock we may set up (contract).
    unsafe {
        (*sb).s_blocksize = kernel::page::PAGE_SIZE as _;
        (*sb).s_blocksize_bits = kernel::page::PAGE_SHIFT as _;
        (*sb).s_magic = KDBUS_SUPER_MAGIC as _;
        (*sb).s_op = F::filesystem().super_ops.get().cast_const();
        (*sb).s_time_gran = 1;
    }
    // SAFETY: `sb` is live.
    let inode = match unsafe { new_inode::<F>(sb, S_IFDIR | 0o555, Kuid::ROOT, Kgid::ROOT) } {
        Ok(i) => i,
        Err(e) => return -e.0,
    };
    // SAFETY: `inode` is fresh; d_make_root consumes it even on failure.
    let root = unsafe { bindings::d_make_root(inode) };
    let Some(root) = NonNull::new(root) else {
        return -ENOMEM.0;
    };
    // SAFETY: `sb` is live; the superblock owns this reference to its root,
    // and we take one more for the domain's `Dir`.
    unsafe {
        (*sb).s_root = root.as_ptr();
        bindings::kdbus_dget(root.as_ptr());
    }
    let dir = Dir {
        dentry: root,
        _ops: PhantomData,
    };
    // SAFETY: `fc->user_ns` is the live namespace of the mounting task.
    let user_ns = ARef::from(unsafe { UserNamespace::from_ptr((*fc).user_ns) });
    match F::fill_super(user_ns, dir) {
        Ok(domain) => {
            // SAFETY: one reference moves into `s_fs_info`; kill_sb (always
            // called, even when fill_super fails) takes it back.
            unsafe { (*sb).s_fs_info = Arc::into_raw(domain).cast_mut().cast() };
            0
        }
        Err(e) => -e.0,
    }
}

/// `file_system_type.kill_sb`.
///
/// # Safety
///
/// `sb` is a superblock of this type being destroyed.
unsafe extern "C" fn kill_sb<F: FsOps>(sb: *mut bindings::super_block) {
    // SAFETY: `sb` is being destroyed; `s_fs_info` is ours.
    let info = unsafe { (*sb).s_fs_info };
    if !info.is_null() {
        // SAFETY: set by fill_super from `Arc::into_raw`, taken back once.
        F::kill_super(unsafe { Arc::from_raw(info.cast_const().cast::<F::Domain>()) });
    }
    // SAFETY: `sb` is live; this drops the pinned dentries and the inodes.
    unsafe { bindings::kill_litter_super(sb) };
}

/// `super_operations.evict_inode`: frees the inode's node and number.
///
/// # Safety
///
/// `inode` is a kdbusfs inode being evicted.
unsafe extern "C" fn evict_inode<F: FsOps>(inode: *mut bindings::inode) {
    // SAFETY: `inode` is being evicted; nobody else uses it.
    unsafe {
        bindings::truncate_inode_pages_final(&raw mut (*inode).i_data);
        bindings::clear_inode(inode);
        bindings::ida_free(F::filesystem().ino_ida.get(), (*inode).i_ino as _);
        let node = (*inode).i_private;
        if !node.is_null() {
            (*inode).i_private = ptr::null_mut();
            drop(KBox::from_raw(node.cast::<F::Node>()));
        }
    }
}

/// The handle of an open file.
///
/// # Safety
///
/// `file` is a live file of this type whose `open` succeeded.
unsafe fn handle<'a, F: FsOps>(file: *mut bindings::file) -> &'a F::Handle {
    // SAFETY: set by node_open to a pinned handle freed only by release.
    unsafe { &*((*file).private_data as *const F::Handle) }
}

/// `open`.
///
/// # Safety
///
/// `inode` is a file inode of this type and `file` the file being opened.
unsafe extern "C" fn node_open<F: FsOps>(
    inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: the VFS passes a live file inode of ours, with its node.
    let node = unsafe { &*((*inode).i_private as *const F::Node) };
    // SAFETY: `file` is being opened and live.
    match F::open(node, unsafe { File::from_raw(file) }) {
        Ok(h) => {
            // SAFETY: the handle is never moved out of its box; release
            // frees it.
            let raw = KBox::into_raw(unsafe { Pin::into_inner_unchecked(h) });
            // SAFETY: `private_data` is ours.
            unsafe { (*file).private_data = raw.cast() };
            0
        }
        Err(e) => -e.0,
    }
}

/// `release`.
///
/// # Safety
///
/// `file` was opened by [`node_open`] and this is its last reference.
unsafe extern "C" fn node_release<F: FsOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> c_int {
    // SAFETY: last reference to `file`; private_data holds our handle.
    let h = unsafe { Pin::new_unchecked(KBox::from_raw((*file).private_data.cast::<F::Handle>())) };
    // SAFETY: `file` lives until this call returns.
    F::release(h, unsafe { File::from_raw(file) });
    0
}

/// `unlocked_ioctl` and `compat_ioctl` (the ABI has one layout for both).
///
/// # Safety
///
/// `file` was opened by [`node_open`].
unsafe extern "C" fn node_ioctl<F: FsOps>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: usize,
) -> isize {
    // SAFETY: `file` is open for the call.
    let (h, f) = unsafe { (handle::<F>(file), File::from_raw(file)) };
    to_ret(F::ioctl(h, f, cmd, arg))
}

/// `mmap`.
///
/// # Safety
///
/// `file` was opened by [`node_open`]; `vma` is the area being mapped.
unsafe extern "C" fn node_mmap<F: FsOps>(
    file: *mut bindings::file,
    vma: *mut bindings::vm_area_struct,
) -> c_int {
    // SAFETY: `file` is open; `vma` is the area being set up.
    let (h, f, v) = unsafe {
        (
            handle::<F>(file),
            File::from_raw(file),
            VmaNew::from_raw(vma),
        )
    };
    match F::mmap(h, f, v) {
        Ok(()) => 0,
        Err(e) => -e.0,
    }
}

/// `poll`.
///
/// # Safety
///
/// `file` was opened by [`node_open`]; `pt` is the poll table of the call.
unsafe extern "C" fn node_poll<F: FsOps>(
    file: *mut bindings::file,
    pt: *mut kernel::bindings::poll_table_struct,
) -> c_uint {
    // SAFETY: `file` is open; `pt` is this call's table (the kernel crate
    // declares the type opaque; ours has its fields).
    let (h, f, mut t) = unsafe {
        (
            handle::<F>(file),
            File::from_raw(file),
            PollTable::from_raw(pt.cast()),
        )
    };
    F::poll(h, f, &mut t)
}
