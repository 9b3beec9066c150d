// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * verify: packets run through this build's programs (BPF_PROG_TEST_RUN) over a private copy
 * of the rules, in a network namespace of its own (core/sandbox.c), and what each did said
 * per packet; with expectations, a pipeline's gate. A local client's call cannot be test-run
 * (the kernel has no test run for cgroup sock_addr programs): it is made for real, by a child
 * in a cgroup of the sandbox's own, to listeners in the sandbox's namespace.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <bpf/bpf.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include "config.h"
#include "core/sandbox.h"
#include "jsonout.h"
#include "loader.h"
#include "verify.h"

#define MAX_PACKET_ARGS 64
#define MAX_HOST_ARGS 16
#define MAX_PACKETS 4096
#define MAX_LINE 1024
#define MAX_LISTENERS 256
#define MAX_CHANGES 16
/* How long a local client's call waits for its datagram's answer. */
#define CALL_WAIT_MS 1000

struct verify_args {
	const char *config;  /* -f: the rules; NULL: the loaded instance's */
	const char *packets; /* a file of packets, "-": standard input */
	const char *packet_texts[MAX_PACKET_ARGS];
	int n_packet_texts;
	const char *hosts[MAX_HOST_ARGS];
	int n_hosts;
	bool xdp;
	bool json;
};

static const struct opt verify_opts[] = {
	{ .name = "file",
	  .short_name = 'f',
	  .type = OPT_T_STRING,
	  .offset = offsetof(struct verify_args, config),
	  .synopsis = "[-f CONFIG]" },
	{ .name = "packets",
	  .short_name = 'p',
	  .type = OPT_T_STRING,
	  .offset = offsetof(struct verify_args, packets),
	  .arg = "FILE" },
	{ .name = "packet",
	  .type = OPT_T_STRINGS,
	  .offset = offsetof(struct verify_args, packet_texts),
	  .arg = "TEXT",
	  .count_at = offsetof(struct verify_args, n_packet_texts),
	  .max = MAX_PACKET_ARGS },
	{ .name = "host",
	  .type = OPT_T_STRINGS,
	  .offset = offsetof(struct verify_args, hosts),
	  .arg = "ADDR",
	  .count_at = offsetof(struct verify_args, n_hosts),
	  .max = MAX_HOST_ARGS,
	  .clash = "host address '%s' given twice" },
	OPT_FLAG(struct verify_args, xdp, "xdp"),
	OPT_FLAG(struct verify_args, json, "json"),
	OPT_END,
};

struct line {
	struct verify_packet pkt;
	const char *source;
	int line;
};

/* What one packet or call came to. */
struct outcome {
	enum verify_verdict verdict;
	__u16 port;	  /* VERDICT_REWRITE: the new port */
	char detail[256]; /* the answer (reject), what the client saw (calls), an error */
	struct frame_change changes[MAX_CHANGES];
	int n_changes;
	bool steered; /* decided at socket lookup (sk_lookup) */
};

struct verify_run {
	const struct verify_args *args;
	struct line *lines;
	int n_lines;
	struct rule_spec rules[BPFREDIR_MAX_RULES];
	size_t n_rules;
	/* Ingress through XDP: --xdp, or the config's (or instance's) interfaces all run it. */
	bool xdp;
	bool steer; /* TCP rules at socket lookup (steering socket) */
	__u8 hosts[BPFREDIR_MAX_LOCAL_ADDRS][BPFREDIR_ADDR_LEN];
	int n_hosts;
	struct sandbox sb;
	struct {
		__u8 proto;
		__u16 port;
		int fd;
		__u64 cookie;
	} listeners[MAX_LISTENERS];
	int n_listeners;
};

/* --- the packets ------------------------------------------------------------------------ */

/* hide_words: not every user could read the file, and whoever may run verify as root (sudo)
 * could otherwise read the first words of any file root can: the line is named, not shown. */
static int add_line(struct verify_run *run, const char *source, int lineno, char *text,
		    bool hide_words, int *bad)
{
	struct verify_packet pkt;
	char why[256];
	int ret = verify_packet_parse(text, &pkt, why, sizeof(why));

	if (ret > 0)
		return 0;
	if (ret < 0) {
		fprintf(stderr, "%s:%d: %s\n", source, lineno,
			hide_words ? "not a packet (not every user may read the file: its words "
				     "are not repeated)"
				   : why);
		(*bad)++;
		return 0;
	}
	if (run->n_lines == MAX_PACKETS)
		return fail("%s:%d: more than %d packets", source, lineno, MAX_PACKETS);
	run->lines[run->n_lines++] = (struct line){ .pkt = pkt, .source = source, .line = lineno };
	return 0;
}

static int read_packets(struct verify_run *run)
{
	const struct verify_args *args = run->args;
	const char *source = "packets", *path = args->packets;
	char text[MAX_LINE + 2];
	int i, bad = 0, lineno = 0, ret = 0;
	bool hide_words = false;
	struct stat st;
	FILE *f;

	for (i = 0; i < args->n_packet_texts && !ret; i++) {
		if (strlen(args->packet_texts[i]) > MAX_LINE)
			return fail("--packet:%d: longer than %d characters", i + 1, MAX_LINE);
		strcpy(text, args->packet_texts[i]);
		ret = add_line(run, "--packet", i + 1, text, false, &bad);
	}
	if (!ret && (path || !args->n_packet_texts)) {
		if (!path || !strcmp(path, "-")) {
			f = stdin;
			source = "<stdin>";
		} else {
			f = fopen(path, "re");
			if (!f)
				return fail("%s: %s", path, strerror(errno));
			source = path;
			hide_words = fstat(fileno(f), &st) || !readable_by_all(fileno(f), &st);
		}
		while (!ret && fgets(text, sizeof(text), f)) {
			lineno++;
			if (!strchr(text, '\n') && !feof(f)) {
				ret = fail("%s:%d: longer than %d characters", source, lineno,
					   MAX_LINE);
				break;
			}
			ret = add_line(run, source, lineno, text, hide_words, &bad);
		}
		if (!ret && ferror(f))
			ret = fail("%s: %s", source, strerror(errno));
		if (f != stdin)
			fclose(f);
	}
	if (ret)
		return ret;
	if (bad)
		return fail("%d %s could not be read", bad, bad == 1 ? "line" : "lines");
	for (i = 0; i < run->n_lines; i++)
		if (run->lines[i].pkt.kind != VERIFY_HOST)
			return 0;
	return fail("no packets (in %s)", args->n_packet_texts ? "--packet" : source);
}

/* --- the rules ---------------------------------------------------------------------------- */

static int rules_from_config(struct verify_run *run)
{
	static struct config cfg;
	int ret, i;
	size_t r;

	cfg.path = run->args->config;
	cfg.allow_empty = true;
	ret = parse_config(&cfg);
	if (ret)
		return ret;
	for (r = 0; r < cfg.n_rules; r++)
		run->rules[run->n_rules++] = cfg.rules[r].spec;
	run->steer = cfg.steer_socket;
	run->xdp = cfg.n_ifaces > 0;
	for (i = 0; i < cfg.n_ifaces; i++)
		if (cfg.if_modes[i] == IFACE_TC)
			run->xdp = false;
	return 0;
}

/* Does every interface of the open instance take ingress with XDP? (Its TC egress may be a
 * legacy filter: what decides is the XDP link.) */
static bool instance_xdp(int set_fd)
{
	static struct current cur;
	int i, mode, xdp = 0, tc = 0;

	if (read_current(&cur, set_fd))
		return false;
	for (i = 0; i < cur.n_ifaces; i++) {
		mode = iface_mode_of(cur.ifindexes[i]);
		xdp += mode == IFACE_XDP || mode == IFACE_XDP_GENERIC;
		tc += mode == IFACE_TC;
	}
	return xdp && !tc;
}

/* The dispatcher's preamble, taken here: without -f, verify needs what a read view does. */
#define INSTANCE_NEEDS (NEED_ROOT | NEED_PINS | NEED_LOADED)

static int rules_from_instance(struct verify_run *run)
{
	struct redir_policy_key key, *prev = NULL;
	struct instance in = {};
	struct redir_rule rule;
	int set, ret;

	ret = instance_open(INSTANCE_NEEDS, ": give the rules with -f CONFIG", &in);
	if (ret >= 0)
		return ret;
	ret = 0;
	set = live_set_open();
	if (set < 0) {
		instance_close(INSTANCE_NEEDS, &in);
		return fail("reading the rules at %s: %s", pin_dir, strerror(-set));
	}
	while (!bpf_map_get_next_key(set, prev, &key)) {
		prev = &key;
		if (key.kind != POLICY_PUBLIC)
			continue;
		if (bpf_map_lookup_elem(set, &key, &rule)) {
			ret = fail("reading the rules at %s: %s", pin_dir, strerror(errno));
			break;
		}
		rule_spec_from_entry(&run->rules[run->n_rules++], &key, &rule);
	}
	run->xdp = instance_xdp(set);
	run->steer = steer_running();
	close(set);
	instance_close(INSTANCE_NEEDS, &in);
	return ret;
}

/* --- the host's addresses ------------------------------------------------------------------ */

static void host_add(struct verify_run *run, const __u8 *addr)
{
	int i;

	for (i = 0; i < run->n_hosts; i++)
		if (!memcmp(run->hosts[i], addr, BPFREDIR_ADDR_LEN))
			return;
	if (run->n_hosts < BPFREDIR_MAX_LOCAL_ADDRS)
		memcpy(run->hosts[run->n_hosts++], addr, BPFREDIR_ADDR_LEN);
}

/* The addresses given (--host, host lines), or else every address a packet arrives at or
 * leaves from, and every one a local client calls. */
static int collect_hosts(struct verify_run *run)
{
	const struct verify_args *args = run->args;
	__u8 addr[BPFREDIR_ADDR_LEN];
	const struct verify_packet *p;
	bool declared = args->n_hosts > 0;
	int i, j;

	for (i = 0; i < args->n_hosts; i++) {
		if (!scan_addr(args->hosts[i], addr))
			return usage_error("--host '%s' is not %s", args->hosts[i], ADDR_FORM);
		host_add(run, addr);
	}
	for (i = 0; i < run->n_lines; i++) {
		p = &run->lines[i].pkt;
		if (p->kind != VERIFY_HOST)
			continue;
		declared = true;
		for (j = 0; j < p->n_addrs; j++)
			host_add(run, p->addrs[j]);
	}
	if (declared)
		return 0;
	for (i = 0; i < run->n_lines; i++) {
		p = &run->lines[i].pkt;
		if (p->kind == VERIFY_OUT)
			host_add(run, p->saddr);
		else if (p->kind != VERIFY_HOST)
			host_add(run, p->daddr);
	}
	return 0;
}

/* --- packets through TC and XDP ----------------------------------------------------------- */

static const struct rule_spec *rule_for(const struct verify_run *run, __u16 port, __u8 proto);

/* Socket steering: a TCP packet TC let through to a public port meets the kernel's socket
 * lookup, as a connection that has no socket yet does, and the steering program there. */
static void steer_packet(struct verify_run *run, const struct verify_packet *p, struct outcome *o)
{
	__u32 retval;
	__u64 cookie;
	int err, i;

	err = sandbox_sk_lookup(&run->sb, p->v6, p->saddr, p->sport, p->daddr, p->dport, &retval,
				&cookie);
	o->steered = true;
	if (err) {
		o->verdict = VERDICT_ERROR;
		snprintf(o->detail, sizeof(o->detail), "test run (sk_lookup): %s", strerror(-err));
		return;
	}
	if (retval != SK_PASS) {
		o->verdict = VERDICT_REJECT;
		snprintf(o->detail, sizeof(o->detail), "refused at socket lookup");
		return;
	}
	for (i = 0; cookie && i < run->n_listeners; i++) {
		if (run->listeners[i].cookie != cookie)
			continue;
		o->verdict = VERDICT_REWRITE;
		o->port = run->listeners[i].port;
		snprintf(o->detail, sizeof(o->detail),
			 "handed to the listener on port %u at socket lookup", o->port);
		return;
	}
	snprintf(
		o->detail, sizeof(o->detail),
		cookie ? "handed to a socket at socket lookup"
		       : "no listener taken at socket lookup: the kernel answers as a closed port");
}

static void run_packet(struct verify_run *run, const struct verify_packet *p, struct outcome *o)
{
	__u8 in[VERIFY_FRAME_MAX], out[VERIFY_FRAME_MAX];
	__u32 len = verify_frame(p, in), out_len = sizeof(out), retval;
	enum sandbox_hook hook = p->kind == VERIFY_OUT ? SANDBOX_TC_EGRESS
				 : run->xdp	       ? SANDBOX_XDP
						       : SANDBOX_TC_INGRESS;
	bool passed, dropped, answered;
	__u16 before, after;
	int err;

	err = sandbox_run(&run->sb, hook, in, len, out, &out_len, &retval);
	if (err) {
		o->verdict = VERDICT_ERROR;
		snprintf(o->detail, sizeof(o->detail), "test run: %s", strerror(-err));
		return;
	}
	if (hook == SANDBOX_XDP) {
		passed = retval == XDP_PASS;
		dropped = retval == XDP_DROP;
		answered = retval == XDP_TX;
	} else {
		passed = retval == (__u32)TC_ACT_UNSPEC || retval == TC_ACT_OK;
		dropped = retval == TC_ACT_SHOT;
		answered = retval == TC_ACT_REDIRECT;
	}
	if (answered) {
		o->verdict = VERDICT_REJECT;
		frame_text(out, out_len, o->detail, sizeof(o->detail));
		return;
	}
	if (dropped) {
		o->verdict = VERDICT_DROP;
		return;
	}
	if (!passed) {
		o->verdict = VERDICT_ERROR;
		snprintf(o->detail, sizeof(o->detail), "the program returned %d", (int)retval);
		return;
	}
	if (out_len == len)
		o->n_changes = frame_changes(in, out, len, o->changes, MAX_CHANGES);
	before = frame_port(in, len, p->kind != VERIFY_OUT);
	after = frame_port(out, out_len, p->kind != VERIFY_OUT);
	o->verdict = before == after ? VERDICT_PASS : VERDICT_REWRITE;
	o->port = after;
	if (run->steer && o->verdict == VERDICT_PASS && p->kind == VERIFY_IN &&
	    p->proto == IPPROTO_TCP && rule_for(run, p->dport, IPPROTO_TCP))
		steer_packet(run, p, o);
}

/* --- local clients' calls ------------------------------------------------------------------ */

struct call_result {
	int err;       /* errno of the call, 0 when it went through */
	char what[32]; /* the call that failed */
	__u16 shown;   /* the port getpeername() or recvfrom() showed */
	bool has_shown;
};

static int listener(struct verify_run *run, __u8 proto, __u16 port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int fd, off = 0, on = 1, i;
	socklen_t len;

	for (i = 0; i < run->n_listeners; i++)
		if (run->listeners[i].proto == proto && run->listeners[i].port == port)
			return 0;
	if (run->n_listeners == MAX_LISTENERS)
		return -E2BIG;
	fd = socket(AF_INET6,
		    (proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK |
			    SOCK_CLOEXEC,
		    0);
	if (fd < 0)
		return -errno;
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    (proto == IPPROTO_TCP && listen(fd, 16))) {
		int err = -errno;

		close(fd);
		return err;
	}
	len = sizeof(run->listeners[0].cookie);
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &run->listeners[run->n_listeners].cookie, &len))
		run->listeners[run->n_listeners].cookie = 0;
	run->listeners[run->n_listeners].proto = proto;
	run->listeners[run->n_listeners].port = port;
	run->listeners[run->n_listeners++].fd = fd;
	return 0;
}

static socklen_t sockaddr_of(const struct verify_packet *p, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!p->v6) {
		struct sockaddr_in *sin = (void *)ss;

		sin->sin_family = AF_INET;
		sin->sin_port = htons(p->dport);
		memcpy(&sin->sin_addr, p->daddr + 12, 4);
		return sizeof(*sin);
	}
	struct sockaddr_in6 *sin6 = (void *)ss;

	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(p->dport);
	memcpy(&sin6->sin6_addr, p->daddr, 16);
	return sizeof(*sin6);
}

static __u16 sockaddr_port(const struct sockaddr_storage *ss)
{
	return ntohs(ss->ss_family == AF_INET ? ((const struct sockaddr_in *)ss)->sin_port
					      : ((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* What the local client does, in the child: the call, then what it shows of the peer. */
static void client_call(const struct verify_packet *p, struct call_result *r)
{
	struct timeval tv = { .tv_sec = CALL_WAIT_MS / 1000 };
	struct sockaddr_storage to, from;
	socklen_t to_len = sockaddr_of(p, &to), from_len = sizeof(from);
	char buf[64];
	int fd;

	fd = socket(p->v6 ? AF_INET6 : AF_INET, p->proto == IPPROTO_TCP ? SOCK_STREAM : SOCK_DGRAM,
		    0);
	if (fd < 0) {
		r->err = errno;
		snprintf(r->what, sizeof(r->what), "socket");
		return;
	}
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (p->kind == VERIFY_CONNECT) {
		snprintf(r->what, sizeof(r->what), "connect");
		if (connect(fd, (struct sockaddr *)&to, to_len)) {
			r->err = errno;
			return;
		}
		snprintf(r->what, sizeof(r->what), "getpeername");
		if (getpeername(fd, (struct sockaddr *)&from, &from_len)) {
			r->err = errno;
			return;
		}
		r->shown = sockaddr_port(&from);
		r->has_shown = true;
		if (p->proto == IPPROTO_TCP)
			return;
		snprintf(r->what, sizeof(r->what), "send");
		if (send(fd, "bpfredir", 8, 0) < 0) {
			r->err = errno;
			return;
		}
	} else {
		snprintf(r->what, sizeof(r->what), "sendto");
		if (sendto(fd, "bpfredir", 8, 0, (struct sockaddr *)&to, to_len) < 0) {
			r->err = errno;
			return;
		}
	}
	/* The answer's source, as recvfrom() shows it. */
	snprintf(r->what, sizeof(r->what), "recvfrom");
	from_len = sizeof(from);
	if (recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &from_len) < 0) {
		r->err = errno;
		return;
	}
	r->shown = sockaddr_port(&from);
	r->has_shown = true;
	r->err = 0;
}

/* A connection waiting at TCP listener i, taken and closed: did one wait? */
static bool take_connection(const struct verify_run *run, int i)
{
	int conn = accept4(run->listeners[i].fd, NULL, NULL, SOCK_CLOEXEC);

	if (conn < 0)
		return false;
	close(conn);
	return true;
}

/* The listeners' side while the child calls: each datagram answered from the port it came
 * to; the port a connection or datagram reached, or 0. */
static __u16 serve_call(struct verify_run *run, int result_fd)
{
	struct pollfd pfds[MAX_LISTENERS + 1];
	struct sockaddr_storage peer;
	socklen_t peer_len;
	__u16 reached = 0;
	char buf[64];
	ssize_t n;
	int i, fd;

	for (;;) {
		for (i = 0; i < run->n_listeners; i++)
			pfds[i] = (struct pollfd){ .fd = run->listeners[i].fd, .events = POLLIN };
		pfds[run->n_listeners] = (struct pollfd){ .fd = result_fd, .events = POLLIN };
		if (poll(pfds, run->n_listeners + 1, 5 * CALL_WAIT_MS) <= 0)
			break;
		for (i = 0; i < run->n_listeners; i++) {
			if (!(pfds[i].revents & POLLIN))
				continue;
			fd = run->listeners[i].fd;
			if (run->listeners[i].proto == IPPROTO_TCP) {
				if (take_connection(run, i))
					reached = run->listeners[i].port;
				continue;
			}
			peer_len = sizeof(peer);
			n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&peer, &peer_len);
			if (n >= 0) {
				reached = run->listeners[i].port;
				sendto(fd, buf, n, 0, (struct sockaddr *)&peer, peer_len);
			}
		}
		if (pfds[run->n_listeners].revents)
			break;
	}
	/* A connection the child finished before the listener's turn came. */
	for (i = 0; i < run->n_listeners && !reached; i++)
		if (run->listeners[i].proto == IPPROTO_TCP && take_connection(run, i))
			reached = run->listeners[i].port;
	return reached;
}

static const struct rule_spec *rule_for(const struct verify_run *run, __u16 port, __u8 proto)
{
	size_t i;

	for (i = 0; i < run->n_rules; i++)
		if (run->rules[i].public_port == port && run->rules[i].proto == proto)
			return &run->rules[i];
	return NULL;
}

static void run_call(struct verify_run *run, const struct verify_packet *p, struct outcome *o)
{
	const struct rule_spec *rule = rule_for(run, p->dport, p->proto);
	__u64 redirected[2] = {}, refused[2] = {};
	struct call_result r = {};
	int pipefd[2], err, status;
	__u16 reached;
	pid_t pid;

	err = listener(run, p->proto, p->dport);
	if (!err && rule)
		err = listener(run, p->proto, rule->target_port);
	if (err) {
		o->verdict = VERDICT_ERROR;
		snprintf(o->detail, sizeof(o->detail), "listening on port %u: %s", p->dport,
			 strerror(-err));
		return;
	}
	sandbox_stat(&run->sb, STAT_SOCK_REDIRECTED, &redirected[0]);
	sandbox_stat(&run->sb, STAT_SOCK_REFUSED, &refused[0]);
	if (pipe2(pipefd, O_CLOEXEC)) {
		o->verdict = VERDICT_ERROR;
		snprintf(o->detail, sizeof(o->detail), "pipe: %s", strerror(errno));
		return;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		close(pipefd[0]);
		err = sandbox_cgroup_join(&run->sb);
		if (err) {
			r.err = -err;
			snprintf(r.what, sizeof(r.what), "joining the cgroup");
		} else {
			client_call(p, &r);
		}
		_exit(write(pipefd[1], &r, sizeof(r)) == sizeof(r) ? 0 : 1);
	}
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		o->verdict = VERDICT_ERROR;
		snprintf(o->detail, sizeof(o->detail), "fork: %s", strerror(errno));
		return;
	}
	reached = serve_call(run, pipefd[0]);
	if (read(pipefd[0], &r, sizeof(r)) != sizeof(r)) {
		memset(&r, 0, sizeof(r));
		r.err = EPIPE;
		snprintf(r.what, sizeof(r.what), "the client");
	}
	close(pipefd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sandbox_stat(&run->sb, STAT_SOCK_REDIRECTED, &redirected[1]);
	sandbox_stat(&run->sb, STAT_SOCK_REFUSED, &refused[1]);

	if (refused[1] != refused[0]) {
		o->verdict = VERDICT_REJECT;
		snprintf(o->detail, sizeof(o->detail), "%s: %s", r.what, strerror(r.err));
		return;
	}
	o->verdict = redirected[1] != redirected[0] ? VERDICT_REWRITE : VERDICT_PASS;
	o->port = reached ? reached : p->dport;
	if (r.err)
		snprintf(o->detail, sizeof(o->detail), "%s: %s", r.what, strerror(r.err));
	else if (r.has_shown)
		snprintf(o->detail, sizeof(o->detail), "reached port %u; %s shows port %u", reached,
			 p->kind == VERIFY_CONNECT && p->proto == IPPROTO_TCP ? "getpeername"
									      : "recvfrom",
			 r.shown);
}

/* --- the report ---------------------------------------------------------------------------- */

static bool as_expected(const struct verify_packet *p, const struct outcome *o)
{
	return p->expect == VERDICT_NONE ||
	       (p->expect == o->verdict &&
		(p->expect != VERDICT_REWRITE || p->expect_port == o->port));
}

static void outcome_text(const struct outcome *o, char *buf, size_t size)
{
	if (o->verdict == VERDICT_REWRITE)
		snprintf(buf, size, "rewrite %u", o->port);
	else
		snprintf(buf, size, "%s", verdict_name(o->verdict));
}

static void expect_text(const struct verify_packet *p, char *buf, size_t size)
{
	if (p->expect == VERDICT_REWRITE)
		snprintf(buf, size, "rewrite %u", p->expect_port);
	else
		snprintf(buf, size, "%s", verdict_name(p->expect));
}

static const char *hook_name(const struct verify_packet *p, const struct outcome *o, bool xdp)
{
	if (o->steered)
		return xdp ? "xdp, sk_lookup" : "tc ingress, sk_lookup";
	switch (p->kind) {
	case VERIFY_OUT:
		return "tc egress";
	case VERIFY_CONNECT:
		return "connect";
	case VERIFY_SENDMSG:
		return "sendmsg";
	default:
		return xdp ? "xdp" : "tc ingress";
	}
}

static void print_plain(const struct line *l, const struct outcome *o, bool ok)
{
	char text[160], verdict[32], expect[32];
	int i;

	verify_packet_text(&l->pkt, text, sizeof(text));
	outcome_text(o, verdict, sizeof(verdict));
	printf("%s:%d: %s: %s", l->source, l->line, text, verdict);
	for (i = 0; i < o->n_changes; i++)
		printf("%s%s %s -> %s", i ? ", " : " (", o->changes[i].field, o->changes[i].from,
		       o->changes[i].to);
	if (o->n_changes)
		putchar(')');
	if (o->detail[0])
		printf("%s%s", o->verdict == VERDICT_REJECT ? ": answer " : ": ", o->detail);
	if (!ok) {
		expect_text(&l->pkt, expect, sizeof(expect));
		printf(" [expected %s]", expect);
	}
	putchar('\n');
}

static struct json_object *outcome_json(const struct line *l, const struct outcome *o, bool xdp,
					bool ok)
{
	struct json_object *obj = json_object_new_object(), *changes = json_object_new_array();
	char text[160], expect[32];
	bool answer;
	int i;

	verify_packet_text(&l->pkt, text, sizeof(text));
	json_add(obj, "source", json_object_new_string(l->source));
	json_add(obj, "line", json_object_new_int(l->line));
	json_add(obj, "packet", json_object_new_string(text));
	json_add(obj, "hook", json_object_new_string(hook_name(&l->pkt, o, xdp)));
	json_add(obj, "verdict", json_object_new_string(verdict_name(o->verdict)));
	json_add(obj, "port", o->verdict == VERDICT_REWRITE ? json_object_new_int(o->port) : NULL);
	for (i = 0; i < o->n_changes; i++) {
		struct json_object *c = json_object_new_object();

		json_add(c, "field", json_object_new_string(o->changes[i].field));
		json_add(c, "from", json_object_new_string(o->changes[i].from));
		json_add(c, "to", json_object_new_string(o->changes[i].to));
		json_object_array_add(changes, c);
	}
	json_add(obj, "changes", changes);
	/* Both keys always: the answer a rejected packet got, or what else there is to say. */
	answer = o->verdict == VERDICT_REJECT &&
		 (l->pkt.kind == VERIFY_IN || l->pkt.kind == VERIFY_OUT) && o->detail[0];
	json_add(obj, "answer", json_str_or_null(answer ? o->detail : NULL));
	json_add(obj, "detail", json_str_or_null(!answer && o->detail[0] ? o->detail : NULL));
	if (l->pkt.expect != VERDICT_NONE) {
		expect_text(&l->pkt, expect, sizeof(expect));
		json_add(obj, "expected", json_object_new_string(expect));
	} else {
		json_add(obj, "expected", NULL);
	}
	json_add(obj, "as_expected", json_object_new_boolean(ok));
	return obj;
}

/* A packet whose result differs, named on stderr, where a pipeline's log shows errors. */
static void report_differs(const struct line *l, const struct outcome *o)
{
	char verdict[32], expect[32];

	outcome_text(o, verdict, sizeof(verdict));
	expect_text(&l->pkt, expect, sizeof(expect));
	if (o->verdict == VERDICT_ERROR)
		fprintf(stderr, "%s:%d: could not be run: %s\n", l->source, l->line, o->detail);
	else
		fprintf(stderr, "%s:%d: expected %s, got %s\n", l->source, l->line, expect,
			verdict);
}

/* --- the verb ------------------------------------------------------------------------------ */

static int sandbox_setup(struct verify_run *run, bool calls)
{
	size_t r;
	int err, i;

	err = sandbox_enter_netns();
	if (err)
		return fail("a network namespace for the test: %s", strerror(-err));
	err = sandbox_load(&run->sb, run->xdp, run->steer);
	if (err)
		return fail("loading the programs: %s%s", strerror(-err),
			    verbose ? "" : " (-v says more)");
	/* Steering hands connections to the targets' listeners: one for each, registered as
	 * a running service's is. */
	for (r = 0; run->steer && r < run->n_rules && !err; r++)
		if (run->rules[r].proto == IPPROTO_TCP)
			err = listener(run, IPPROTO_TCP, run->rules[r].target_port);
	if (err)
		return fail("a listener for socket steering: %s", strerror(-err));
	err = sandbox_rules(&run->sb, run->rules, run->n_rules);
	if (err)
		return fail("installing the rules: %s", strerror(-err));
	for (i = 0; i < run->n_hosts && !err; i++) {
		err = sandbox_host_addr(&run->sb, run->hosts[i]);
		if (!err && !addr_is_loopback(run->hosts[i]))
			err = sandbox_addr_add(run->hosts[i]);
	}
	if (err)
		return fail("the host's addresses: %s", strerror(-err));
	if (calls) {
		err = sandbox_cgroup(&run->sb);
		if (err)
			return fail("a cgroup for local clients' calls: %s", strerror(-err));
	}
	return 0;
}

static int do_verify(struct instance *in, const void *cfg)
{
	const struct verify_args *args = cfg;
	static struct verify_run run;
	struct json_object *doc = NULL, *list = NULL;
	struct outcome o;
	bool calls = false, ok;
	int ret, i, differ = 0, checked = 0;

	(void)in;
	run.args = args;
	run.lines = calloc(MAX_PACKETS, sizeof(*run.lines));
	if (!run.lines)
		return fail("out of memory");
	ret = read_packets(&run);
	if (!ret)
		ret = collect_hosts(&run);
	/* A config is read before the root check, as apply reads it; an instance needs root. */
	if (!ret)
		ret = args->config ? rules_from_config(&run) : rules_from_instance(&run);
	if (!ret && args->config)
		ret = require_root();
	if (ret)
		goto out_lines;
	for (i = 0; i < run.n_lines; i++)
		if (run.lines[i].pkt.kind == VERIFY_CONNECT ||
		    run.lines[i].pkt.kind == VERIFY_SENDMSG)
			calls = true;
	run.xdp |= args->xdp;
	/* A client's send on a connection reset under it fails (EPIPE) rather than ending the
	 * child before it reports. */
	signal(SIGPIPE, SIG_IGN);
	ret = sandbox_setup(&run, calls);
	if (ret)
		goto out;
	if (args->json) {
		doc = json_object_new_object();
		list = json_object_new_array();
	}
	for (i = 0; i < run.n_lines; i++) {
		const struct line *l = &run.lines[i];

		if (l->pkt.kind == VERIFY_HOST)
			continue;
		memset(&o, 0, sizeof(o));
		if (l->pkt.kind == VERIFY_CONNECT || l->pkt.kind == VERIFY_SENDMSG)
			run_call(&run, &l->pkt, &o);
		else
			run_packet(&run, &l->pkt, &o);
		ok = as_expected(&l->pkt, &o) && o.verdict != VERDICT_ERROR;
		checked += l->pkt.expect != VERDICT_NONE;
		differ += !ok;
		if (args->json)
			json_object_array_add(list, outcome_json(l, &o, run.xdp, ok));
		else
			print_plain(l, &o, ok);
		if (!ok)
			report_differs(l, &o);
	}
	if (args->json) {
		json_add(doc, "rules", json_object_new_string(args->config ?: "loaded"));
		json_add(doc, "ingress", json_object_new_string(run.xdp ? "xdp" : "tc"));
		json_add(doc, "steering", json_object_new_string(run.steer ? "socket" : "packet"));
		json_add(doc, "packets", list);
		json_add(doc, "differ", json_object_new_int(differ));
		json_print(doc);
	}
	fflush(stdout);
	if (differ)
		ret = fail("%d of %d packets differ from what was expected", differ,
			   checked > differ ? checked : differ);
out:
	for (i = 0; i < run.n_listeners; i++)
		close(run.listeners[i].fd);
	sandbox_free(&run.sb);
out_lines:
	free(run.lines);
	return ret;
}

const struct cmd cmd_verify = {
	.name = "verify",
	.func = do_verify,
	.opts = verify_opts,
	.cfg_size = sizeof(struct verify_args),
	.doc = "Run packets through this build's TC and XDP programs (BPF_PROG_TEST_RUN) and\n"
	       "local clients' calls through its socket programs, over a private copy of the\n"
	       "rules of CONFIG (or of the loaded instance), in a network namespace of its own:\n"
	       "nothing of a loaded instance changes. Packets come from --packets FILE (or\n"
	       "standard input), or --packet TEXT, one a line:\n"
	       "  [in|out] tcp|udp SRC > DST [syn ack fin rst psh] [=> EXPECTED]\n"
	       "  connect tcp|udp DST [=> EXPECTED]   sendmsg udp DST [=> EXPECTED]\n"
	       "  host ADDR...\n"
	       "SRC and DST are A.B.C.D:PORT or [IPv6]:PORT; EXPECTED is pass, drop, reject or\n"
	       "rewrite PORT. Each packet's result is printed (--json: as a document); exit 1\n"
	       "when one differs from its expectation. The host's addresses are the host lines\n"
	       "and --host ADDR, or else every address packets arrive at and clients call.\n"
	       "Ingress runs through TC, or XDP with --xdp or when the interfaces (of CONFIG\n"
	       "or the instance) all run XDP; with steering socket, a TCP packet it passes to\n"
	       "a public port goes on through the sk_lookup program.\n",
};
