// SPDX-License-Identifier: GPL-2.0
/*
 * One-line wrappers for static inlines and macros (see helpers.h).
 */
#include <linux/cred.h>
#include <linux/fs.h>
#include <linux/mm.h>
#include <linux/poll.h>
#include <linux/user_namespace.h>
#include <linux/wait.h>

#include "helpers.h"

void kdbus_inode_lock(struct inode *inode) { inode_lock(inode); }
void kdbus_inode_unlock(struct inode *inode) { inode_unlock(inode); }
const struct cred *kdbus_current_cred(void) { return current_cred(); }
struct user_namespace *kdbus_get_user_ns(struct user_namespace *ns) { return get_user_ns(ns); }
void kdbus_put_user_ns(struct user_namespace *ns) { put_user_ns(ns); }
void kdbus_poll_wait(struct file *file, struct wait_queue_head *wq,
		     struct poll_table_struct *pt) { poll_wait(file, wq, pt); }
void kdbus_vm_flags_clear(struct vm_area_struct *vma, unsigned long flags) { vm_flags_clear(vma, flags); }
void kdbus_init_waitqueue_head(struct wait_queue_head *wq) { init_waitqueue_head(wq); }
void kdbus_wake_up_all(struct wait_queue_head *wq) { wake_up_all(wq); }
