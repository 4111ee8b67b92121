// SPDX-License-Identifier: GPL-2.0
/*
 * Load generator of bench/capture.ts: UDP datagrams to 127.0.0.1:PORT as fast as one core sends
 * them, for SECONDS. Prints "sent N seconds S cpu C read R" on stdout (C: this process's CPU
 * time, user + system, seconds; R: datagrams read back, `read` mode). Run it inside a private
 * network namespace.
 *
 *   udpflood PORT SECONDS [PAYLOAD_BYTES] [closed|sink|read] [TICK_MS]
 *
 * TICK_MS > 0: also print "tick T N C" every TICK_MS while sending (T: CLOCK_MONOTONIC ns, N:
 * datagrams sent so far, C: CPU ns so far), so that a caller can cut the flood into windows.
 *
 * closed (default): nothing listens on PORT, so every datagram ends in kfree_skb(NO_SOCKET) and
 *   the stack answers each with an ICMP port unreachable (not rate-limited on loopback): two
 *   packets through the stack per datagram counted.
 * sink: this process binds PORT first with the smallest receive buffer and never reads, so every
 *   datagram crosses the whole receive path up to the socket and is dropped at its full queue
 *   (kfree_skb(SOCKET_RCVBUFF)): one packet through the stack per datagram counted.
 * read: this process binds PORT first and reads each datagram back after sending it (loopback
 *   delivers it within the send, in softirq), as a receiver that keeps up: one packet through
 *   the stack per datagram counted, delivered to the application and freed by it.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static double cpu_seconds(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: %s PORT SECONDS [PAYLOAD_BYTES] [closed|sink|read] [TICK_MS]\n", argv[0]);
		return 2;
	}
	int port = atoi(argv[1]);
	double seconds = atof(argv[2]);
	size_t payload = argc > 3 ? (size_t)atoi(argv[3]) : 32;
	double tick = argc > 5 ? atof(argv[5]) / 1000 : 0;
	char buf[1500], rbuf[1500];
	struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || payload > sizeof(buf)) {
		perror("socket");
		return 1;
	}
	inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
	int reader = -1;

	if (argc > 4 && strcmp(argv[4], "read") == 0) {
		reader = socket(AF_INET, SOCK_DGRAM, 0);
		if (reader < 0 || bind(reader, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			perror("reader socket");
			return 1;
		}
	} else if (argc > 4 && strcmp(argv[4], "sink") == 0) {
		int one = 1; /* the kernel raises it to its minimum */
		int sink = socket(AF_INET, SOCK_DGRAM, 0);

		if (sink < 0 || setsockopt(sink, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one)) < 0 ||
		    bind(sink, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
			perror("sink socket");
			return 1;
		}
	} else if (argc > 4 && strcmp(argv[4], "closed") != 0) {
		fprintf(stderr, "unknown mode %s (closed, sink or read)\n", argv[4]);
		return 2;
	}
	memset(buf, 'x', sizeof(buf));
	double start = now(), end = start + seconds, t = start, next_tick = tick > 0 ? start : end + 1;
	unsigned long n = 0, got = 0;

	while (t < end) {
		for (int i = 0; i < 256; i++) {
			/* ECONNREFUSED from a previous ICMP error is expected: count only what left. */
			if (sendto(fd, buf, payload, 0, (struct sockaddr *)&dst, sizeof(dst)) >= 0)
				n++;
			if (reader >= 0 && recv(reader, rbuf, sizeof(rbuf), MSG_DONTWAIT) >= 0)
				got++;
		}
		t = now();
		if (t >= next_tick) {
			printf("tick %.0f %lu %.0f\n", t * 1e9, n, cpu_seconds() * 1e9);
			fflush(stdout);
			next_tick += tick;
		}
	}
	/* The loopback receive path runs in softirq on this task (netif_rx, then do_softirq at
	 * local_bh_enable) and is charged to it without CONFIG_IRQ_TIME_ACCOUNTING: the CPU time
	 * covers the whole path of each datagram, probes included. */
	printf("sent %lu seconds %.6f cpu %.6f read %lu\n", n, t - start, cpu_seconds(), got);
	return 0;
}
