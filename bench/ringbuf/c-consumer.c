// SPDX-License-Identifier: GPL-2.0
/*
 * The C reference consumer: reads the ring buffer map inherited as fd 3 exactly as the addon's
 * reader thread does (libbpf ring_buffer + epoll with the same poll interval), and touches each
 * record like the JS decoder does (reads two fields). Prints "ready", consumes until "stop" on
 * stdin, drains, then prints one JSON line with its totals.
 */
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

static unsigned long long records, bytes, checksum;

static int on_record(void *ctx, void *data, size_t size)
{
	const uint64_t *p = data;
	(void)ctx;
	checksum += p[0] + (uint32_t)p[2]; /* seq + cpu: the fields the JS side reads */
	records++;
	bytes += size;
	return 0;
}

int main(int argc, char **argv)
{
	int poll_ms = argc > 1 ? atoi(argv[1]) : 10, ep, n;
	struct ring_buffer *rb = ring_buffer__new(3, on_record, NULL, NULL);
	struct epoll_event ev = { .events = EPOLLIN }, evs[2];
	int stop = 0;

	if (!rb) {
		fprintf(stderr, "c-consumer: ring_buffer__new(fd 3): %s\n", strerror(errno));
		return 1;
	}
	ep = epoll_create1(0);
	ev.data.fd = ring_buffer__epoll_fd(rb);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev)) {
		perror("c-consumer: epoll");
		return 1;
	}
	ev.data.fd = 0;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, 0, &ev)) {
		perror("c-consumer: epoll stdin");
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	while (!stop) {
		n = epoll_wait(ep, evs, 2, poll_ms);
		if (n < 0 && errno != EINTR) {
			perror("c-consumer: epoll_wait");
			return 1;
		}
		for (int i = 0; i < n; i++)
			if (evs[i].data.fd == 0)
				stop = 1;
		if (ring_buffer__consume(rb) < 0) {
			fprintf(stderr, "c-consumer: ring_buffer__consume failed\n");
			return 1;
		}
	}
	/* Final drain: everything committed before "stop" is counted. */
	if (ring_buffer__consume(rb) < 0)
		return 1;
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("{\"records\":%llu,\"bytes\":%llu,\"checksum\":%llu,\"cpu_us\":%llu}\n", records, bytes, checksum,
	       (unsigned long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ULL + ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
	ring_buffer__free(rb);
	return 0;
}
