// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Socket steering (bpf/steer.bpf.c): load attaches the sk_lookup program to the network
 * namespace, a newer build points the link at its program in place, unload removes it with
 * the other pins. The listeners of the rules' targets are registered from two sides: the
 * sock_ops program on every attached cgroup registers a service as it starts listening, and
 * every command that derives the rules (steer_register) registers those already running, by
 * taking a copy of their socket from the process that holds it (pidfd_getfd).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include "attach.h"
#include "log.h"
#include "objects.h"
#include "pins.h"
#include "steer.h"
#include "steer.skel.h"

/* The maps only the steering object has: made and pinned by the load that starts it. */
static const char *const steer_map_names[] = { "steer_wildcard", "steer_listeners", "steer_bound",
					       "steer_fast" };

static const char *steer_link_pin(void)
{
	static char name[NAME_MAX + 1];

	if (!name[0])
		snprintf(name, sizeof(name), "%s", pin_link_name(LINK_STEER_SK_LOOKUP, 0, NULL));
	return name;
}

bool steer_running(void)
{
	return pin_exists("links", steer_link_pin());
}

const char *steer_unsupported(void)
{
	if (libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_SK_LOOKUP, NULL) <= 0)
		return "no sk_lookup programs (Linux 5.9)";
	if (libbpf_probe_bpf_map_type(BPF_MAP_TYPE_SOCKHASH, NULL) <= 0)
		return "no SOCKHASH maps (Linux 4.18)";
	return NULL;
}

static bool is_steer_map(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(steer_map_names) / sizeof(steer_map_names[0]); i++)
		if (!strcmp(name, steer_map_names[i]))
			return true;
	return false;
}

int steer_maps_open(struct steer_maps *maps)
{
	int *fds[] = { &maps->wildcard, &maps->listeners, &maps->bound, &maps->fast };
	char path[PATH_MAX];
	size_t i;
	int err = 0;

	*maps = STEER_MAPS_NONE;
	for (i = 0; i < sizeof(fds) / sizeof(fds[0]) && !err; i++) {
		err = pin_path(path, sizeof(path), "maps", steer_map_names[i]);
		if (!err && (*fds[i] = bpf_obj_get(path)) < 0)
			err = -errno;
	}
	if (err)
		steer_maps_close(maps);
	return err;
}

void steer_maps_close(struct steer_maps *maps)
{
	int *fds[] = { &maps->wildcard, &maps->listeners, &maps->bound, &maps->fast };
	size_t i;

	for (i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		close_fds(fds[i], 1);
	*maps = STEER_MAPS_NONE;
}

/* The steering object on the instance's maps: policy through policy_fd (not pinned yet during
 * a first load), its own through their pins, made and pinned by this load if there are none,
 * every other map through its pin. */
static struct steer_bpf *steer_open_load(int policy_fd)
{
	struct steer_bpf *skel = steer_bpf__open();
	char path[PATH_MAX];
	struct bpf_map *map;
	int err = 0, fd;

	if (!skel)
		return NULL;
	err = objects_netns_cookie((__u64 *)&skel->rodata->netns_cookie);
	bpf_object__for_each_map(map, skel->obj)
	{
		if (err)
			break;
		if (bpf_map__is_internal(map))
			continue;
		if (!strcmp(bpf_map__name(map), "policy")) {
			err = bpf_map__reuse_fd(map, policy_fd);
			continue;
		}
		err = pin_path(path, sizeof(path), "maps", bpf_map__name(map));
		if (err)
			break;
		if (is_steer_map(bpf_map__name(map))) {
			err = bpf_map__set_pin_path(map, path); /* libbpf reuses or pins it */
			continue;
		}
		fd = bpf_obj_get(path);
		err = fd < 0 ? -errno : bpf_map__reuse_fd(map, fd);
		if (fd >= 0)
			close(fd);
	}
	if (!err)
		err = steer_bpf__load(skel);
	if (err) {
		steer_bpf__destroy(skel);
		errno = -err;
		return NULL;
	}
	return skel;
}

static int pin_listen_prog(struct steer_bpf *skel)
{
	char path[PATH_MAX];
	int err = pin_unlink("progs", STEER_LISTEN_PROG_NAME);

	if (!err)
		err = pin_path(path, sizeof(path), "progs", STEER_LISTEN_PROG_NAME);
	if (!err && bpf_obj_pin(bpf_program__fd(skel->progs.bpfredir_listen), path))
		err = -errno;
	return err;
}

int steer_start(struct pin_txn *txn, int policy_fd)
{
	struct steer_bpf *skel = steer_open_load(policy_fd);
	char path[PATH_MAX];
	int err, fd = -1;

	if (!skel)
		return pr_warn_err(-errno, "cannot load the steering programs: %s",
				   strerror(errno));
	err = pin_listen_prog(skel);
	if (!err)
		err = attach_netns_sk_lookup(bpf_program__fd(skel->progs.bpfredir_steer), &fd);
	if (!err)
		err = pin_path(path, sizeof(path), "links", steer_link_pin());
	if (!err) {
		err = pin_link_fd(txn, fd, path); /* takes the fd */
		fd = -1;
	}
	close_fds(&fd, 1);
	steer_bpf__destroy(skel); /* the link and the pin hold what they run */
	if (err)
		return pr_warn_err(err, "cannot attach the steering program: %s", strerror(-err));
	return 0;
}

/* The link at link_fd pointed at prog_fd unless it runs the same code already: 1 when it
 * changed, 0 when not, or -errno. */
static int link_update_to(int link_fd, int prog_fd)
{
	struct bpf_link_info info = {};
	__u32 len = sizeof(info);
	int old_fd = -1;
	bool same;

	if (!bpf_link_get_info_by_fd(link_fd, &info, &len))
		old_fd = bpf_prog_get_fd_by_id(info.prog_id);
	same = old_fd >= 0 && progs_same_code(old_fd, prog_fd);
	close_fds(&old_fd, 1);
	if (same)
		return 0;
	return bpf_link_update(link_fd, prog_fd, NULL) ? -errno : 1;
}

/* Point every cgroup's sock_ops link at prog_fd (this build's): how many changed, or -errno. */
static int update_listen_links(int prog_fd)
{
	char path[PATH_MAX];
	struct pin_link link;
	struct dirent *de;
	int n = 0, ret = 0, link_fd;
	DIR *dir = pin_opendir("links");

	if (!dir)
		return -errno;
	while (ret >= 0 && (de = readdir(dir))) {
		if (!pin_link_parse(de->d_name, &link) || link.kind != LINK_CGROUP ||
		    strcmp(link.hook, STEER_LISTEN_SUFFIX) ||
		    pin_path(path, sizeof(path), "links", de->d_name))
			continue;
		link_fd = bpf_obj_get(path);
		if (link_fd < 0)
			continue;
		ret = link_update_to(link_fd, prog_fd);
		n += ret > 0;
		close(link_fd);
	}
	closedir(dir);
	return ret < 0 ? ret : n;
}

/* The steering object of this build over a loaded instance's pinned maps (its own made and
 * pinned where missing), or NULL with errno set. */
static struct steer_bpf *steer_load_pinned(void)
{
	struct steer_bpf *skel;
	char path[PATH_MAX];
	int policy_fd = -1;

	if (!pin_path(path, sizeof(path), "maps", "policy"))
		policy_fd = bpf_obj_get(path);
	if (policy_fd < 0)
		return NULL;
	skel = steer_open_load(policy_fd);
	close(policy_fd);
	return skel;
}

int steer_pin_maps(void)
{
	struct steer_bpf *skel;

	if (!steer_running())
		return 0;
	skel = steer_load_pinned();
	if (!skel)
		return -errno;
	steer_bpf__destroy(skel); /* the pins hold the maps */
	return 0;
}

int steer_upgrade(void)
{
	int link_fd = -1, err, changed = 0, listen_updated;
	struct steer_bpf *skel;
	char path[PATH_MAX];

	if (!steer_running())
		return 0;
	skel = steer_load_pinned();
	if (!skel)
		return -errno;
	err = pin_path(path, sizeof(path), "links", steer_link_pin());
	if (!err && (link_fd = bpf_obj_get(path)) < 0)
		err = -errno;
	if (!err)
		changed = link_update_to(link_fd, bpf_program__fd(skel->progs.bpfredir_steer));
	if (changed < 0)
		err = changed;
	if (!err)
		err = pin_listen_prog(skel);
	listen_updated =
		err ? 0 : update_listen_links(bpf_program__fd(skel->progs.bpfredir_listen));
	if (listen_updated < 0)
		err = listen_updated;
	close_fds(&link_fd, 1);
	steer_bpf__destroy(skel);
	return err ? err : changed + listen_updated;
}

/* The inodes of the listening TCP sockets on ports in one of /proc/self/net/tcp{,6}:
 * "sl local_address rem_address st ... inode", the address as hex ADDR:PORT. */
static size_t listening_inodes(const char *file, const __be16 *ports, size_t n_ports,
			       unsigned long *inodes, size_t max, size_t n)
{
	char line[512], local[64];
	unsigned int state, port;
	unsigned long inode;
	FILE *f = fopen(file, "re");
	size_t i;
	char *colon;

	if (!f)
		return n;
	while (n < max && fgets(line, sizeof(line), f)) {
		if (sscanf(line, " %*s %63s %*s %x %*s %*s %*s %*s %*s %lu", local, &state,
			   &inode) != 3 ||
		    state != 0x0A /* TCP_LISTEN */ || !(colon = strrchr(local, ':')))
			continue;
		port = strtoul(colon + 1, NULL, 16);
		for (i = 0; i < n_ports; i++)
			if (ntohs(ports[i]) == port)
				break;
		if (i < n_ports && inode)
			inodes[n++] = inode;
	}
	fclose(f);
	return n;
}

/* A listener's key: the address it is bound to, as the maps write addresses, and its port;
 * *family: its socket's. */
static int listener_key(int fd, struct redir_listener_key *key, int *family)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int listening = 0;
	socklen_t olen = sizeof(listening);

	memset(key, 0, sizeof(*key));
	if (getsockname(fd, (struct sockaddr *)&ss, &len) ||
	    getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &olen))
		return -errno;
	if (!listening)
		return -ENOTCONN;
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;

		key->addr[10] = key->addr[11] = 0xff;
		memcpy(&key->addr[12], &sin->sin_addr, 4);
		key->port = sin->sin_port;
	} else if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;

		memcpy(key->addr, &sin6->sin6_addr, sizeof(key->addr));
		key->port = sin6->sin6_port;
	} else {
		return -EAFNOSUPPORT;
	}
	*family = ss.ss_family;
	return 0;
}

/* The listener (fd in value) as a member of its address and port: where it is already (a
 * command registers the running ones each time), else in a free member number from its
 * cookie's on, else in its cookie's (bpf/steer.bpf.c, listen_member). */
static int register_member(int listeners_fd, struct redir_listener_key *key, __u64 value,
			   __u64 cookie)
{
	__u32 start = cookie % BPFREDIR_LISTENER_MEMBERS, i;
	__u64 held;

	for (i = 0; i < BPFREDIR_LISTENER_MEMBERS; i++) {
		key->member = i;
		if (!bpf_map_lookup_elem(listeners_fd, key, &held) && held == cookie)
			return 0;
	}
	for (i = 0; i < BPFREDIR_LISTENER_MEMBERS; i++) {
		key->member = (start + i) % BPFREDIR_LISTENER_MEMBERS;
		if (!bpf_map_update_elem(listeners_fd, key, &value, BPF_NOEXIST))
			return 0;
		if (errno != EEXIST)
			return -errno;
	}
	key->member = start;
	return bpf_map_update_elem(listeners_fd, key, &value, BPF_ANY) ? -errno : 0;
}

/* The listener fd registered as the sock_ops program registers one (bpf/steer.bpf.c,
 * listen_register). */
static int register_listener(const struct steer_maps *maps, int fd,
			     const struct redir_listener_key *key, int family)
{
	const __u32 *w = (const __u32 *)key->addr;
	__u64 value = fd; /* the maps' value size: a socket's cookie when read */
	__u32 slot, port = ntohs(key->port);
	struct redir_listener_key member = *key;
	socklen_t len = sizeof(__u64);
	__u64 cookie;
	__u8 one = 1;
	int err;

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &cookie, &len))
		return -errno;
	err = register_member(maps->listeners, &member, value, cookie);
	if (err)
		return err;
	if (family == AF_INET && !w[3]) {
		slot = steer_wildcard_slot(port, false);
		return bpf_map_update_elem(maps->wildcard, &slot, &value, BPF_ANY) ? -errno : 0;
	}
	if (family == AF_INET6 && !(w[0] | w[1] | w[2] | w[3])) {
		slot = steer_wildcard_slot(port, true);
		if (bpf_map_update_elem(maps->wildcard, &slot, &value, BPF_ANY))
			return -errno;
		slot = steer_wildcard_slot(port, false);
		if (bpf_map_update_elem(maps->wildcard, &slot, &value, BPF_NOEXIST) &&
		    errno != EEXIST)
			return -errno;
		return 0;
	}
	return bpf_map_update_elem(maps->bound, &port, &one, BPF_ANY) ? -errno : 0;
}

/* fd number target_fd of process pid, a listener with inode inode, registered. The process
 * may have closed or reused the number since it was read: the copy must still be that
 * socket. */
static int register_one(const struct steer_maps *maps, int pid, int target_fd, unsigned long inode)
{
	int pidfd = syscall(SYS_pidfd_open, pid, 0), fd = -1, err = 0, family = AF_UNSPEC;
	struct redir_listener_key key;
	struct stat st;

	if (pidfd < 0)
		return -errno;
	fd = syscall(SYS_pidfd_getfd, pidfd, target_fd, 0);
	if (fd < 0)
		err = -errno;
	close(pidfd);
	if (!err && (fstat(fd, &st) || st.st_ino != inode))
		err = -ESTALE;
	if (!err)
		err = listener_key(fd, &key, &family);
	if (!err)
		err = register_listener(maps, fd, &key, family);
	if (fd >= 0)
		close(fd);
	return err;
}

static bool all_digits(const char *name)
{
	for (; *name; name++)
		if (!isdigit((unsigned char)*name))
			return false;
	return true;
}

#define STEER_MAX_SCAN 4096

int steer_register(const struct steer_maps *maps, const __be16 *ports, size_t n_ports)
{
	static unsigned long inodes[STEER_MAX_SCAN];
	char path[PATH_MAX], link[64];
	size_t n, i, left;
	struct dirent *p, *f;
	int registered = 0, err;
	DIR *procs, *fds;

	if (!n_ports)
		return 0;
	n = listening_inodes("/proc/self/net/tcp", ports, n_ports, inodes, STEER_MAX_SCAN, 0);
	n = listening_inodes("/proc/self/net/tcp6", ports, n_ports, inodes, STEER_MAX_SCAN, n);
	left = n;
	procs = left ? opendir("/proc") : NULL;
	while (procs && left && (p = readdir(procs))) {
		if (!all_digits(p->d_name))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", p->d_name);
		fds = opendir(path);
		while (fds && left && (f = readdir(fds))) {
			unsigned long inode;
			ssize_t len;

			if (!all_digits(f->d_name))
				continue;
			snprintf(path, sizeof(path), "/proc/%s/fd/%s", p->d_name, f->d_name);
			len = readlink(path, link, sizeof(link) - 1);
			if (len <= 0)
				continue;
			link[len] = '\0';
			if (sscanf(link, "socket:[%lu]", &inode) != 1)
				continue;
			for (i = 0; i < n && inodes[i] != inode; i++)
				;
			if (i == n)
				continue;
			err = register_one(maps, atoi(p->d_name), atoi(f->d_name), inode);
			if (err) {
				pr_debug("steering: listener %lu of process %s: %s", inode,
					 p->d_name, strerror(-err));
				continue;
			}
			inodes[i] = 0; /* held by a fork too: registered once */
			registered++;
			left--;
		}
		if (fds)
			closedir(fds);
	}
	if (procs)
		closedir(procs);
	return registered;
}

int steer_fast_set(const struct steer_maps *maps, const __be16 targets[BPFREDIR_PORTS])
{
	static __u32 ports[BPFREDIR_PORTS];
	__u32 count = BPFREDIR_PORTS, i;

	for (i = 0; i < BPFREDIR_PORTS; i++)
		ports[i] = i;
	return bpf_map_update_batch(maps->fast, ports, targets, &count, NULL) ? -errno : 0;
}
