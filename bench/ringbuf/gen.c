// SPDX-License-Identifier: GPL-2.0
/* Load generator: for every byte read on stdin, calls getppid() in a tight loop for the given
 * number of seconds (each call fires raw_tp/sys_enter once) and prints the number of calls.
 * Exits at end of input. One process serves every phase (its pid is a BPF load-time constant). */
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall, so no extra records */
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 3.0, t0;
	char go;

	/* Tell the bench which syscall to count: the generator's own read()/write() must not
	 * produce records, or phase accounting (received + lost == attempts) would be off. */
	printf("%d\n", (int)SYS_getppid);
	fflush(stdout);
	while (read(0, &go, 1) == 1) {
		unsigned long long calls = 0;

		t0 = now();
		do {
			for (int i = 0; i < 256; i++)
				syscall(SYS_getppid);
			calls += 256;
		} while (now() - t0 < secs);
		printf("%llu\n", calls);
		fflush(stdout);
	}
	return 0;
}
