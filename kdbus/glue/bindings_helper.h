/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Kernel APIs the module needs beyond what the kernel crate's bindings
 * carry; bindgen turns the allowlisted parts into bindings_generated.rs.
 */
#include <linux/fs_context.h>
#include <linux/namei.h>
#include <linux/pid_namespace.h>
#include <linux/poll.h>
#include <linux/shmem_fs.h>

#include "helpers.h"
