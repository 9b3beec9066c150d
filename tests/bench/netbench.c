// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The sockets of the benchmarks, each for a fixed time, in C so the tool is never the
 * bottleneck that python would be:
 *
 *   netbench udpsink PORT WARMUP_MS SECONDS
 *	Counts the UDP datagrams a socket on PORT gets during SECONDS, after WARMUP_MS of
 *	draining, reading without ever sleeping (it keeps a CPU busy). Prints "received drops seconds": drops are the datagrams the stack carried
 *	all the way to the socket but found its queue full (they cost the stack the same).
 *   netbench tcpserver PORT
 *	Accepts, reads a request, writes a reply and closes, one connection after the other,
 *	until killed. It closes first, so TIME_WAIT stays on the server and the client never
 *	runs out of ports.
 *   netbench tcpclient ADDR PORT SECONDS
 *	Connects to ADDR:PORT, sends a request, reads the reply to the server's close,
 *	closes, again and again for SECONDS. Prints "connections seconds". Any failure (a
 *	connection refused, dropped, or not answered within a second) ends it with status 1
 *	and a one-line message on stderr.
 *   netbench holdserver PORT
 *	Accepts connections, writes one byte on each and keeps them all open until killed.
 *   netbench holdclient ADDR PORT N
 *	Opens N connections to ADDR:PORT, reads the server's byte on each (so every one has
 *	carried data both ways), prints "ready" and keeps them open until killed. A failure
 *	ends it with status 1 and a one-line message, as tcpclient's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include "benchutil.h"

#define IO_TIMEOUT_MS 1000
#define BATCH 64

static __u32 sock_drops(int fd)
{
	__u32 mem[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mem);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mem, &len) || len <= SK_MEMINFO_DROPS * 4)
		die("getsockopt(SO_MEMINFO): %s", strerror(errno));
	return mem[SK_MEMINFO_DROPS];
}

static unsigned long udp_drain(int fd, double until)
{
	static char bufs[BATCH][64];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	unsigned long got = 0;
	int i, n;

	for (i = 0; i < BATCH; i++) {
		iov[i] = (struct iovec){ bufs[i], sizeof(bufs[i]) };
		msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_iov = &iov[i], .msg_iovlen = 1 } };
	}
	/* Never sleep: a reader that sleeps makes the sender pay a wakeup for some datagrams
	 * and not for others, which made the rate jump between two levels from run to run. */
	while (now() < until) {
		n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (n < 0)
			die("recvmmsg: %s", strerror(errno));
		got += n;
	}
	return got;
}

static int udpsink(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, rcvbuf = 8 << 20;
	double warmup, seconds, t0, t1;
	unsigned long got;
	__u32 drops0, drops1;

	if (argc != 5)
		die("usage: netbench udpsink PORT WARMUP_MS SECONDS");
	sa.sin_port = htons(port_arg("PORT", argv[2]));
	warmup = number_arg("WARMUP_MS", argv[3]) / 1000.0;
	seconds = number_arg("SECONDS", argv[4]);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket: %s", strerror(errno));
	/* A large queue so the reader's scheduling on a busy machine costs few datagrams. */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)))
		die("setsockopt: %s", strerror(errno));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		die("bind UDP port %s: %s", argv[2], strerror(errno));
	/* Ready: the harness starts the generator when it sees this line. */
	printf("ready\n");
	fflush(stdout);
	udp_drain(fd, now() + warmup);
	drops0 = sock_drops(fd);
	t0 = now();
	got = udp_drain(fd, t0 + seconds);
	t1 = now();
	drops1 = sock_drops(fd);
	printf("%lu %u %.3f\n", got, drops1 - drops0, t1 - t0);
	return 0;
}

/* A TCP listener on PORT (a command-line argument), or the program dies saying why. */
static int tcp_listen(const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, one = 1;

	sa.sin_port = htons(port_arg("PORT", port));
	fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 4096))
		die("listen on TCP port %s: %s", port, strerror(errno));
	return fd;
}

/* The next connection on listener fd, past the interruptions accept may report. */
static int tcp_accept(int fd)
{
	int c;

	while ((c = accept(fd, NULL, NULL)) < 0)
		if (errno != EINTR && errno != ECONNABORTED)
			die("accept: %s", strerror(errno));
	return c;
}

static int tcpserver(int argc, char **argv)
{
	char buf[64];
	int fd, c;

	if (argc != 3)
		die("usage: netbench tcpserver PORT");
	fd = tcp_listen(argv[2]);
	for (;;) {
		c = tcp_accept(fd);
		/* A client that vanished is its own problem; the server goes on. */
		if (read(c, buf, sizeof(buf)) > 0 && write(c, "pong\n", 5) < 0)
			errno = 0;
		close(c);
	}
}

/* Wait for FD to be ready for EVENTS, at most IO_TIMEOUT_MS. */
static int wait_fd(int fd, short events)
{
	struct pollfd p = { .fd = fd, .events = events };
	int n;

	do
		n = poll(&p, 1, IO_TIMEOUT_MS);
	while (n < 0 && errno == EINTR);
	if (n == 0)
		errno = ETIMEDOUT;
	return n > 0 ? 0 : -1;
}

/* close(fd), errno kept for the caller's message. */
static void close_keeping_errno(int fd)
{
	int err = errno;

	close(fd);
	errno = err;
}

/* A TCP connection to sa, connected (non-blocking), or -1 with errno set. */
static int tcp_connect(const struct sockaddr_in *sa)
{
	int fd, err = 0;
	socklen_t len = sizeof(err);

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) && errno != EINPROGRESS)
		goto fail;
	if (wait_fd(fd, POLLOUT) || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len))
		goto fail;
	if (err) {
		errno = err;
		goto fail;
	}
	return fd;
fail:
	close_keeping_errno(fd);
	return -1;
}

static int one_connection(const struct sockaddr_in *sa)
{
	char buf[64];
	ssize_t n;
	int fd;

	fd = tcp_connect(sa);
	if (fd < 0)
		return -1;
	if (write(fd, "ping\n", 5) != 5)
		goto fail;
	/* The reply, then the server's close. */
	for (;;) {
		if (wait_fd(fd, POLLIN))
			goto fail;
		n = read(fd, buf, sizeof(buf));
		if (n == 0)
			break;
		if (n < 0 && errno != EAGAIN)
			goto fail;
	}
	close(fd);
	return 0;
fail:
	close_keeping_errno(fd);
	return -1;
}

static int tcpclient(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned long count = 0;
	double t0, until, seconds;

	if (argc != 5)
		die("usage: netbench tcpclient ADDR PORT SECONDS");
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		die("ADDR: not an IPv4 address: %s", argv[2]);
	sa.sin_port = htons(port_arg("PORT", argv[3]));
	seconds = number_arg("SECONDS", argv[4]);
	t0 = now();
	until = t0 + seconds;
	while (now() < until) {
		if (one_connection(&sa))
			die("connection %lu to %s:%s: %s", count + 1, argv[2], argv[3],
			    strerror(errno));
		count++;
	}
	printf("%lu %.3f\n", count, now() - t0);
	return 0;
}

static int holdserver(int argc, char **argv)
{
	int fd, c;

	if (argc != 3)
		die("usage: netbench holdserver PORT");
	fd = tcp_listen(argv[2]);
	/* Every accepted socket stays open (its descriptor is simply never closed). */
	for (;;) {
		c = tcp_accept(fd);
		if (write(c, "x", 1) != 1)
			die("write to an accepted connection: %s", strerror(errno));
	}
}

/* One connection to SA that has carried data both ways: connected, the server's byte read.
 * Returns its descriptor, or -1 with errno set. */
static int held_connection(const struct sockaddr_in *sa)
{
	ssize_t n;
	int fd;
	char c;

	fd = tcp_connect(sa);
	if (fd < 0)
		return -1;
	if (wait_fd(fd, POLLIN))
		goto fail;
	n = read(fd, &c, 1);
	if (n != 1) {
		if (!n)
			errno = ECONNRESET; /* closed before the server's byte */
		goto fail;
	}
	return fd;
fail:
	close_keeping_errno(fd);
	return -1;
}

static int holdclient(int argc, char **argv)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	unsigned long i, n;

	if (argc != 5)
		die("usage: netbench holdclient ADDR PORT N");
	if (inet_pton(AF_INET, argv[2], &sa.sin_addr) != 1)
		die("ADDR: not an IPv4 address: %s", argv[2]);
	sa.sin_port = htons(port_arg("PORT", argv[3]));
	n = positive_arg("N", argv[4]);
	for (i = 0; i < n; i++)
		if (held_connection(&sa) < 0)
			die("connection %lu to %s:%s: %s", i + 1, argv[2], argv[3],
			    strerror(errno));
	/* Ready: the harness counts what the connections left in the maps, then kills us. */
	printf("ready\n");
	fflush(stdout);
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "udpsink"))
		return udpsink(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "tcpserver"))
		return tcpserver(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "tcpclient"))
		return tcpclient(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "holdserver"))
		return holdserver(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "holdclient"))
		return holdclient(argc, argv);
	die("usage: netbench udpsink|tcpserver|tcpclient|holdserver|holdclient ARGS...");
}
