// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for static inlines and macros (see helpers.h).
 */
#include <linux/cgroup.h>
#include <linux/cred.h>
#include <linux/dcache.h>
#include <linux/fs.h>
#include <linux/fs_struct.h>
#include <linux/idr.h>
#include <linux/mm.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/net.h>
#include <linux/poll.h>
#include <linux/shmem_fs.h>
#include <linux/timekeeping.h>
#include <linux/uaccess.h>
#include <linux/user_namespace.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <net/sock.h>

#include "helpers.h"

void kdbus_inode_lock(struct inode *inode) { inode_lock(inode); }
void kdbus_inode_unlock(struct inode *inode) { inode_unlock(inode); }
const struct cred *kdbus_get_current_cred(void) { return get_current_cred(); }
const struct cred *kdbus_current_cred(void) { return current_cred(); }
const struct cred *kdbus_get_cred(const struct cred *cred) { return get_cred(cred); }
void kdbus_put_cred(const struct cred *cred) { put_cred(cred); }
struct user_namespace *kdbus_get_user_ns(struct user_namespace *ns) { return get_user_ns(ns); }
void kdbus_put_user_ns(struct user_namespace *ns) { put_user_ns(ns); }
struct dentry *kdbus_dget(struct dentry *dentry) { return dget(dentry); }
void kdbus_poll_wait(struct file *file, struct wait_queue_head *wq,
		     struct poll_table_struct *pt) { poll_wait(file, wq, pt); }
void kdbus_init_poll_funcptr(struct poll_table_struct *pt,
			     void (*qproc)(struct file *, struct wait_queue_head *,
					   struct poll_table_struct *)) { init_poll_funcptr(pt, qproc); }
unsigned int kdbus_vfs_poll(struct file *file, struct poll_table_struct *pt) { return vfs_poll(file, pt); }
void kdbus_init_wait_func(struct wait_queue_entry *entry, kdbus_wait_func_t func)
{
	init_waitqueue_func_entry(entry, func);
	entry->private = current;
}
void kdbus_vm_flags_clear(struct vm_area_struct *vma, unsigned long flags) { vm_flags_clear(vma, flags); }
void kdbus_init_waitqueue_head(struct wait_queue_head *wq) { init_waitqueue_head(wq); }
void kdbus_wake_up_all(struct wait_queue_head *wq) { wake_up_all(wq); }
bool kdbus_wake_up_pollfree(struct wait_queue_head *wq)
{
	if (!waitqueue_active(wq))
		return false;
	__wake_up_pollfree(wq);
	return true;
}
bool kdbus_access_ok(u64 addr, u64 size) { return access_ok(u64_to_user_ptr(addr), size); }
void kdbus_init_delayed_work(struct delayed_work *dw,
			     void (*fn)(struct work_struct *work)) { INIT_DELAYED_WORK(dw, fn); }
bool kdbus_mod_delayed_work(struct delayed_work *dw, unsigned long delay) { return mod_delayed_work(system_wq, dw, delay); }
void kdbus_get_file(struct file *file) { get_file(file); }
void kdbus_put_page(struct page *page) { put_page(page); }
void kdbus_ida_init(struct ida *ida) { ida_init(ida); }
bool kdbus_is_shmem_file(struct file *file) { return shmem_file(file); }
unsigned int kdbus_shmem_seals(struct file *file) { return SHMEM_I(file_inode(file))->seals; }
s64 kdbus_file_size(struct file *file) { return i_size_read(file_inode(file)); }
bool kdbus_is_unix_socket(struct file *file)
{
	struct socket *sock = sock_from_file(file);

	return sock && sock->sk && sock->sk->sk_family == AF_UNIX;
}
struct task_struct *kdbus_current(void) { return current; }
void kdbus_rcu_read_lock(void) { rcu_read_lock(); }
void kdbus_rcu_read_unlock(void) { rcu_read_unlock(); }
struct pid *kdbus_get_pid(struct pid *pid) { return get_pid(pid); }
struct pid_namespace *kdbus_get_pid_ns(struct pid_namespace *ns) { return get_pid_ns(ns); }
void kdbus_get_fs_root(struct fs_struct *fs, struct path *root) { get_fs_root(fs, root); }
/* get_fs_root without the references: fs_struct's layout is randomised. */
void kdbus_fs_root_peek(struct fs_struct *fs, struct path *root) { spin_lock(&fs->lock); *root = fs->root; spin_unlock(&fs->lock); }
unsigned int kdbus_fs_seq_begin(struct fs_struct *fs) { return read_seqcount_begin(&fs->seq); }
bool kdbus_fs_seq_retry(struct fs_struct *fs, unsigned int seq) { return read_seqcount_retry(&fs->seq, seq); }
unsigned int kdbus_rename_seq_begin(void) { return read_seqbegin(&rename_lock); }
bool kdbus_rename_seq_retry(unsigned int seq) { return read_seqretry(&rename_lock, seq); }
bool kdbus_d_unlinked(const struct dentry *dentry) { return d_unlinked(dentry); }
void kdbus_mm_arg_lock(struct mm_struct *mm) { spin_lock(&mm->arg_lock); }
void kdbus_mm_arg_unlock(struct mm_struct *mm) { spin_unlock(&mm->arg_lock); }
struct cgroup *kdbus_task_dfl_cgroup(struct task_struct *task) { return task_dfl_cgroup(task); }
int kdbus_cgroup_path(struct cgroup *cgrp, char *buf, size_t buflen) { return cgroup_path(cgrp, buf, buflen); }
bool kdbus_cgroup_tryget(struct cgroup *cgrp) { return cgroup_tryget(cgrp); }
void kdbus_cgroup_get(struct cgroup *cgrp) { cgroup_get(cgrp); }
void kdbus_cgroup_put(struct cgroup *cgrp) { cgroup_put(cgrp); }
