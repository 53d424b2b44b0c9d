// SPDX-License-Identifier: GPL-2.0
/*
 * clockcheck: is the guest's CLOCK_MONOTONIC a real clock served by the vDSO?
 * Built static by test-vm.sh (cc -static -O2) and run in the test VM.
 *
 * Usage: clockcheck [N]    (N calls per system-call loop, default 1000000;
 *                           the libc clock loop makes at least 1000000)
 *
 * It times four loops: clock_gettime(CLOCK_MONOTONIC) through libc (the vDSO
 * when the clocksource allows it), the same read forced through the system
 * call, getpid(2) as the reference system call, and an empty loop. Besides
 * the cost per call, it records how much of each loop's CPU time the kernel
 * accounted as system time: the tick samples the mode it interrupts, so a
 * loop that never enters the kernel has little system time (only ticks that
 * land in interrupt work: 0% on an idle host, up to ~20% seen on a busy one
 * under the debug kernel) and a system-call loop most of it. It also measures
 * the resolution the reads actually have: the smallest and the median
 * non-zero step between consecutive reads and how many reads differ.
 *
 * Prints `clockcheck: ...` lines, the last one `clockcheck: vdso ok` or
 * `clockcheck: FAIL <reason>`. Exit 0 ok, 1 a check failed, 2 usage.
 * Checks, each against the reference measured in the same run so a busy host
 * moves both sides: the kernel mapped a vDSO (AT_SYSINFO_EHDR); a libc clock
 * read costs less than a fifth of the forced system call (measured: 1/70
 * with the vDSO, equal without); the libc loop's system-time share is below
 * half of the getpid loop's (which must exceed 50%, else the measurement is
 * void); the median step between differing reads is below 1 ms (jiffies
 * moves in 4 ms steps).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/auxv.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static uint64_t ns(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000ull + (uint64_t)t->tv_nsec;
}

static uint64_t tv_us(const struct timeval *t)
{
	return (uint64_t)t->tv_sec * 1000000ull + (uint64_t)t->tv_usec;
}

enum kind { LIBC_CLOCK, SYSCALL_CLOCK, GETPID, EMPTY };
static const char *const names[] = { "clock_gettime (libc)", "clock_gettime (syscall)",
				     "getpid (syscall)", "empty loop" };

struct result {
	double ns_per_call;
	double sys_share; /* system time / (user + system time), 0..1 */
	uint64_t cpu_us;
};

static volatile uint64_t sink;

static struct result measure(enum kind k, long n)
{
	struct rusage r0, r1;
	struct timespec w0, w1, t;
	struct result res;
	uint64_t u, s;

	getrusage(RUSAGE_THREAD, &r0);
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &w0);
	for (long i = 0; i < n; i++) {
		switch (k) {
		case LIBC_CLOCK:
			clock_gettime(CLOCK_MONOTONIC, &t);
			sink += (uint64_t)t.tv_nsec;
			break;
		case SYSCALL_CLOCK:
			syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
			sink += (uint64_t)t.tv_nsec;
			break;
		case GETPID:
			sink += (uint64_t)syscall(SYS_getpid);
			break;
		case EMPTY:
			sink += (uint64_t)i;
			break;
		}
	}
	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &w1);
	getrusage(RUSAGE_THREAD, &r1);
	u = tv_us(&r1.ru_utime) - tv_us(&r0.ru_utime);
	s = tv_us(&r1.ru_stime) - tv_us(&r0.ru_stime);
	res.ns_per_call = (double)(ns(&w1) - ns(&w0)) / (double)n;
	res.cpu_us = u + s;
	res.sys_share = u + s ? (double)s / (double)(u + s) : 0.0;
	return res;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = 1000000;
	struct result r[4];
	struct timespec res, prev, cur;
	enum { SAMPLES = 100000 };
	static uint64_t steps[SAMPLES];
	long nsteps = 0, differ = 0;
	int bad = 0;

	if (argc > 2 || (argc == 2 && (n = atol(argv[1])) <= 0)) {
		fprintf(stderr, "usage: clockcheck [N]\n");
		return 2;
	}

	clock_getres(CLOCK_MONOTONIC, &res);
	printf("clockcheck: vDSO mapped at %#lx, clock_getres(CLOCK_MONOTONIC) = %llu ns\n",
	       getauxval(AT_SYSINFO_EHDR), (unsigned long long)ns(&res));

	/* Resolution as seen: consecutive reads through libc. */
	clock_gettime(CLOCK_MONOTONIC, &prev);
	for (long i = 0; i < SAMPLES; i++) {
		clock_gettime(CLOCK_MONOTONIC, &cur);
		if (ns(&cur) != ns(&prev)) {
			steps[nsteps++] = ns(&cur) - ns(&prev);
			differ++;
		}
		prev = cur;
	}
	qsort(steps, (size_t)nsteps, sizeof(steps[0]), cmp_u64);
	printf("clockcheck: %ld consecutive reads: %ld differ (%.1f%%), step min %llu ns, median %llu ns\n",
	       (long)SAMPLES, differ, 100.0 * (double)differ / SAMPLES,
	       nsteps ? (unsigned long long)steps[0] : 0ull,
	       nsteps ? (unsigned long long)steps[nsteps / 2] : 0ull);

	for (int k = 0; k < 4; k++) {
		long calls = (k == LIBC_CLOCK || k == EMPTY) && n < 1000000 ? 1000000 : n;

		r[k] = measure((enum kind)k, calls);
		printf("clockcheck: %-24s %8.1f ns/call, %3.0f%% of %llu ms CPU in the kernel (%ld calls)\n",
		       names[k], r[k].ns_per_call, 100.0 * r[k].sys_share,
		       (unsigned long long)(r[k].cpu_us / 1000), calls);
	}
	fflush(stdout);

	if (!getauxval(AT_SYSINFO_EHDR)) {
		printf("clockcheck: FAIL no vDSO mapped (AT_SYSINFO_EHDR is 0)\n");
		bad = 1;
	}
	if (r[GETPID].sys_share <= 0.5) {
		printf("clockcheck: FAIL measurement void: the getpid loop spent only %.0f%% in the kernel\n",
		       100.0 * r[GETPID].sys_share);
		bad = 1;
	}
	if (r[LIBC_CLOCK].sys_share >= r[GETPID].sys_share / 2) {
		printf("clockcheck: FAIL clock_gettime enters the kernel (%.0f%% system time, getpid %.0f%%): not served by the vDSO\n",
		       100.0 * r[LIBC_CLOCK].sys_share, 100.0 * r[GETPID].sys_share);
		bad = 1;
	}
	if (r[LIBC_CLOCK].ns_per_call * 5 >= r[SYSCALL_CLOCK].ns_per_call) {
		printf("clockcheck: FAIL clock_gettime through libc costs %.0f ns, the system call %.0f ns: not served by the vDSO\n",
		       r[LIBC_CLOCK].ns_per_call, r[SYSCALL_CLOCK].ns_per_call);
		bad = 1;
	}
	if (!nsteps || steps[nsteps / 2] >= 1000000) {
		printf("clockcheck: FAIL CLOCK_MONOTONIC moves in steps of >= 1 ms (median %llu ns)\n",
		       nsteps ? (unsigned long long)steps[nsteps / 2] : 0ull);
		bad = 1;
	}
	if (!bad)
		printf("clockcheck: vdso ok\n");
	return bad;
}
