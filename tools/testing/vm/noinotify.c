// SPDX-License-Identifier: GPL-2.0
/*
 * LD_PRELOAD stand-in for inotify on kernels built without
 * CONFIG_INOTIFY_USER (the test kernels of tools/testing/kernel/).
 *
 * dbus-broker-launch watches its configuration directories with inotify
 * (to reload on changes) and refuses to start when inotify_init1() fails
 * with ENOSYS. In the benchmark nothing changes its configuration, so when
 * and only when the kernel says ENOSYS, these functions hand out an eventfd
 * that never becomes readable and pretend the watches were added. With a
 * kernel that has inotify the real system calls answer and this library
 * changes nothing. Built by tools/testing/bench.sh and test-dyn.sh:
 *
 *   cc -shared -fPIC -O2 -o noinotify.so noinotify.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fake_wd;

int inotify_init1(int flags)
{
	long r = syscall(SYS_inotify_init1, flags);

	if (r >= 0 || errno != ENOSYS)
		return (int)r;
	return eventfd(0, ((flags & IN_CLOEXEC) ? EFD_CLOEXEC : 0) |
			  ((flags & IN_NONBLOCK) ? EFD_NONBLOCK : 0));
}

int inotify_init(void)
{
	return inotify_init1(0);
}

int inotify_add_watch(int fd, const char *path, uint32_t mask)
{
	long r = syscall(SYS_inotify_add_watch, fd, path, mask);

	if (r >= 0 || errno != ENOSYS)
		return (int)r;
	return ++fake_wd;
}

int inotify_rm_watch(int fd, int wd)
{
	long r = syscall(SYS_inotify_rm_watch, fd, wd);

	if (r >= 0 || errno != ENOSYS)
		return (int)r;
	return 0;
}
