/* SPDX-License-Identifier: GPL-2.0 */
/*
 * One-line wrappers for the static inlines and macros the Rust glue needs
 * and cannot call directly. No logic lives here.
 */
#ifndef KDBUS_HELPERS_H
#define KDBUS_HELPERS_H

#include <linux/types.h>

struct cgroup;
struct cred;
struct fs_struct;
struct mm_struct;
struct path;
struct pid;
struct pid_namespace;
struct task_struct;
struct delayed_work;
struct dentry;
struct file;
struct ida;
struct inode;
struct page;
struct poll_table_struct;
struct user_namespace;
struct vm_area_struct;
struct wait_queue_entry;
struct wait_queue_head;
struct work_struct;

typedef int (*kdbus_wait_func_t)(struct wait_queue_entry *wq_entry, unsigned int mode,
				 int flags, void *key);

void kdbus_inode_lock(struct inode *inode);
void kdbus_inode_unlock(struct inode *inode);
const struct cred *kdbus_get_current_cred(void);
const struct cred *kdbus_current_cred(void);
const struct cred *kdbus_get_cred(const struct cred *cred);
void kdbus_put_cred(const struct cred *cred);
struct user_namespace *kdbus_get_user_ns(struct user_namespace *ns);
void kdbus_put_user_ns(struct user_namespace *ns);
struct dentry *kdbus_dget(struct dentry *dentry);
void kdbus_poll_wait(struct file *file, struct wait_queue_head *wq,
		     struct poll_table_struct *pt);
void kdbus_init_poll_funcptr(struct poll_table_struct *pt,
			     void (*qproc)(struct file *, struct wait_queue_head *,
					   struct poll_table_struct *));
unsigned int kdbus_vfs_poll(struct file *file, struct poll_table_struct *pt);
void kdbus_init_wait_func(struct wait_queue_entry *entry, kdbus_wait_func_t func);
void kdbus_vm_flags_clear(struct vm_area_struct *vma, unsigned long flags);
void kdbus_init_waitqueue_head(struct wait_queue_head *wq);
void kdbus_wake_up_all(struct wait_queue_head *wq);
bool kdbus_wake_up_pollfree(struct wait_queue_head *wq);
bool kdbus_access_ok(u64 addr, u64 size);
void kdbus_init_delayed_work(struct delayed_work *dw,
			     void (*fn)(struct work_struct *work));
bool kdbus_mod_delayed_work(struct delayed_work *dw, unsigned long delay);
void kdbus_get_file(struct file *file);
void kdbus_put_page(struct page *page);
void kdbus_ida_init(struct ida *ida);
bool kdbus_is_shmem_file(struct file *file);
unsigned int kdbus_shmem_seals(struct file *file);
s64 kdbus_file_size(struct file *file);
bool kdbus_is_unix_socket(struct file *file);
struct task_struct *kdbus_current(void);
void kdbus_rcu_read_lock(void);
void kdbus_rcu_read_unlock(void);
struct pid *kdbus_get_pid(struct pid *pid);
struct pid_namespace *kdbus_get_pid_ns(struct pid_namespace *ns);
void kdbus_get_fs_root(struct fs_struct *fs, struct path *root);
void kdbus_fs_root_peek(struct fs_struct *fs, struct path *root);
unsigned int kdbus_fs_seq_begin(struct fs_struct *fs);
bool kdbus_fs_seq_retry(struct fs_struct *fs, unsigned int seq);
unsigned int kdbus_rename_seq_begin(void);
bool kdbus_rename_seq_retry(unsigned int seq);
bool kdbus_d_unlinked(const struct dentry *dentry);
void kdbus_mm_arg_lock(struct mm_struct *mm);
void kdbus_mm_arg_unlock(struct mm_struct *mm);
struct cgroup *kdbus_task_dfl_cgroup(struct task_struct *task);
int kdbus_cgroup_path(struct cgroup *cgrp, char *buf, size_t buflen);
bool kdbus_cgroup_tryget(struct cgroup *cgrp);
void kdbus_cgroup_get(struct cgroup *cgrp);
void kdbus_cgroup_put(struct cgroup *cgrp);

#endif
