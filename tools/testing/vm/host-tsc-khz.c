// SPDX-License-Identifier: GPL-2.0
/*
 * host-tsc-khz: print the host's TSC frequency in kHz (x86-64 only).
 *
 * Under QEMU TCG the guest's TSC is the host's (QEMU reads it with rdtsc),
 * so run-vm.sh passes this value to the guest as tsc_early_khz=. Without it
 * the guest calibrates the TSC against the emulated PIT, which fails when the
 * host is busy ("tsc: Unable to calibrate against PIT", no HPET without
 * ACPI), and then the kernel marks the TSC unstable and runs on jiffies.
 *
 * Method: pairs of CLOCK_MONOTONIC_RAW reads bracketing one rdtsc, the
 * tightest bracket of many taken at the start and at the end of a 200 ms
 * sleep, so a preemption on a busy host does not skew the result.
 * Prints one integer; exit 1 if the two samples make no sense.
 */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

struct sample {
	uint64_t ns;  /* midpoint of the bracket */
	uint64_t tsc;
};

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC_RAW, &t);
	return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static struct sample take(void)
{
	struct sample best = { 0, 0 };
	uint64_t best_width = UINT64_MAX;

	for (int i = 0; i < 200; i++) {
		uint64_t a = now_ns();
		uint64_t c = __rdtsc();
		uint64_t b = now_ns();

		if (b - a < best_width) {
			best_width = b - a;
			best.ns = a + (b - a) / 2;
			best.tsc = c;
		}
	}
	return best;
}

int main(void)
{
	struct timespec pause = { 0, 200 * 1000 * 1000 };
	struct sample s0, s1;
	uint64_t khz;

	s0 = take();
	nanosleep(&pause, NULL);
	s1 = take();
	if (s1.ns <= s0.ns || s1.tsc <= s0.tsc)
		return 1;
	/* cycles per ms = kHz */
	khz = (uint64_t)((double)(s1.tsc - s0.tsc) * 1e6 / (double)(s1.ns - s0.ns) + 0.5);
	if (khz < 100000 || khz > 20000000)  /* 100 MHz .. 20 GHz */
		return 1;
	printf("%llu\n", (unsigned long long)khz);
	return 0;
}
