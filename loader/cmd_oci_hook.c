// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* oci-hook: the OCI runtime hook that attaches a container's cgroup as the container is
 * created and detaches it when it stops, so a container host needs no daemon of its own.
 * podman and CRI-O run it from the hooks.d files in scripts/dist/oci/ (containerd through
 * NRI's hook injector, which reads the same files), only for containers annotated
 * io.bpfredir.attach=true; the runtime gives it the container's state as JSON on stdin. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <json-c/json.h>
#include "loader.h"

/* The annotation naming the instance (its pin dir) a container joins, where a host runs more
 * than one. */
#define PIN_DIR_ANNOTATION "io.bpfredir.pin-dir"
/* A state is a few hundred bytes; a config.json rarely more than tens of KiB. */
#define MAX_JSON (1 << 20)

enum oci_stage {
	OCI_CREATE,
	OCI_POSTSTOP,
};

struct oci_hook_args {
	unsigned int stage;
	bool fail_open;
};

static const struct opt_choice stage_choices[] = {
	{ "create", OCI_CREATE },
	{ "poststop", OCI_POSTSTOP },
	{ NULL, 0 },
};

static const struct opt oci_hook_opts[] = {
	{ .type = OPT_T_ENUM,
	  .offset = offsetof(struct oci_hook_args, stage),
	  .arg = "create|poststop",
	  .choices = stage_choices },
	OPT_FLAG(struct oci_hook_args, fail_open, "fail-open"),
	OPT_END,
};

/* The whole of fd as one JSON document, or NULL with the error said (what names it). */
static struct json_object *read_json(int fd, const char *what)
{
	enum json_tokener_error jerr;
	struct json_object *doc;
	size_t len = 0;
	ssize_t n;
	char *buf;

	buf = malloc(MAX_JSON + 1);
	if (!buf) {
		fail("out of memory");
		return NULL;
	}
	while (len < MAX_JSON && (n = read(fd, buf + len, MAX_JSON - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			fail("cannot read %s: %s", what, strerror(errno));
			free(buf);
			return NULL;
		}
		len += n;
	}
	buf[len] = '\0';
	doc = json_tokener_parse_verbose(buf, &jerr);
	free(buf);
	if (!doc || !json_object_is_type(doc, json_type_object)) {
		fail("%s is not a JSON object%s%s", what, doc ? "" : ": ",
		     doc ? "" : json_tokener_error_desc(jerr));
		json_object_put(doc);
		return NULL;
	}
	return doc;
}

static const char *json_string_at(struct json_object *obj, const char *key)
{
	struct json_object *val;

	if (!json_object_object_get_ex(obj, key, &val) ||
	    !json_object_is_type(val, json_type_string))
		return NULL;
	return json_object_get_string(val);
}

/* The cgroup2 cgroup of process pid, as a path under the cgroup2 mount: 0 or -errno. */
static int cgroup_of_pid(int pid, char *path, size_t size)
{
	char proc[64], line[PATH_MAX + 8], root[PATH_MAX];
	int err = -ENOENT;
	FILE *f;

	snprintf(proc, sizeof(proc), "/proc/%d/cgroup", pid);
	f = fopen(proc, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		if (strncmp(line, "0::", 3))
			continue;
		line[strcspn(line, "\n")] = '\0';
		err = cgroup2_root(root, sizeof(root));
		if (!err && snprintf(path, size, "%s%s", root,
				     strcmp(line + 3, "/") ? line + 3 : "") >= (int)size)
			err = -ENAMETOOLONG;
		break;
	}
	fclose(f);
	return err;
}

/* systemd's slice name to its path: a-b.slice is /a.slice/a-b.slice (as runc expands it). */
static int expand_slice(const char *slice, char *out, size_t size)
{
	size_t len = strlen(slice), used = 0, i;
	const char *base;

	out[0] = '\0';
	if (!strcmp(slice, "-.slice"))
		return 0;
	if (len < 7 || strcmp(slice + len - 6, ".slice") || strchr(slice, '/') || slice[0] == '-')
		return -EINVAL;
	base = slice;
	for (i = 0; i < len - 6; i++) {
		if (slice[i] != '-')
			continue;
		if (slice[i + 1] == '-' || slice[i + 1] == '.')
			return -EINVAL;
		used += snprintf(out + used, size > used ? size - used : 0, "/%.*s.slice", (int)i,
				 base);
	}
	used += snprintf(out + used, size > used ? size - used : 0, "/%s", slice);
	return used >= size ? -ENAMETOOLONG : 0;
}

/* slice:prefix:name's unit under its slice's path: prefix-name.scope, or a name that is a
 * slice itself (as runc names it). */
static int systemd_unit_path(char *path, size_t size, const char *root, const char *slice_path,
			     const char *prefix, const char *name)
{
	size_t len = strlen(name);
	int n;

	if (len > 6 && !strcmp(name + len - 6, ".slice"))
		n = snprintf(path, size, "%s%s/%s", root, slice_path, name);
	else
		n = snprintf(path, size, "%s%s/%s-%s.scope", root, slice_path, prefix, name);
	return n >= (int)size ? -ENAMETOOLONG : 0;
}

/* linux.cgroupsPath of a bundle's config.json as a path under the cgroup2 mount: absolute
 * (cgroupfs), or systemd's slice:prefix:name. */
static int cgroup_of_bundle(const char *bundle, char *path, size_t size)
{
	char config[PATH_MAX], root[PATH_MAX], slice[PATH_MAX], *colon, *colon2;
	struct json_object *doc, *linux_obj;
	const char *cgroups_path;
	int fd, err;

	if (snprintf(config, sizeof(config), "%s/config.json", bundle) >= (int)sizeof(config))
		return fail("bundle path too long: %s", bundle);
	fd = open(config, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return fail("cannot open %s: %s", config, strerror(errno));
	doc = read_json(fd, config);
	close(fd);
	if (!doc)
		return EXIT_FAIL;
	cgroups_path = json_object_object_get_ex(doc, "linux", &linux_obj)
			       ? json_string_at(linux_obj, "cgroupsPath")
			       : NULL;
	err = cgroups_path ? cgroup2_root(root, sizeof(root)) : 0;
	if (!cgroups_path || err) {
		json_object_put(doc);
		return cgroups_path ? fail("no cgroup2 mount found in /proc/self/mounts")
				    : fail("%s has no linux.cgroupsPath", config);
	}
	snprintf(slice, sizeof(slice), "%s", cgroups_path);
	colon = strchr(slice, ':');
	colon2 = colon ? strchr(colon + 1, ':') : NULL;
	if (colon && colon2 && !strchr(colon2 + 1, ':')) {
		*colon = *colon2 = '\0';
		err = expand_slice(*slice ? slice : "system.slice", config, sizeof(config));
		if (!err)
			err = systemd_unit_path(path, size, root, config, colon + 1, colon2 + 1);
	} else if (cgroups_path[0] == '/') {
		err = snprintf(path, size, "%s%s", root, cgroups_path) >= (int)size ? -ENAMETOOLONG
										    : 0;
	} else {
		err = -EINVAL;
	}
	if (err)
		fail("%s: cannot use linux.cgroupsPath '%s'%s", config, cgroups_path,
		     err == -EINVAL ? " (neither an absolute path nor slice:prefix:name)" : "");
	json_object_put(doc);
	return err ? EXIT_FAIL : 0;
}

/* The container's cgroup: its process's, while there is one (create), else what its bundle
 * asked the runtime for (poststop: the process, often the cgroup too, is gone). */
static int container_cgroup(struct json_object *state, char *path, size_t size)
{
	struct json_object *pid_obj;
	const char *bundle;
	int pid = 0;

	if (json_object_object_get_ex(state, "pid", &pid_obj) &&
	    json_object_is_type(pid_obj, json_type_int))
		pid = json_object_get_int(pid_obj);
	if (pid > 0 && !cgroup_of_pid(pid, path, size))
		return 0;
	bundle = json_string_at(state, "bundle");
	if (!bundle)
		return fail("the container state has %s and no bundle",
			    pid > 0 ? "a pid that is gone" : "no pid");
	return cgroup_of_bundle(bundle, path, size);
}

/* What attach and detach need, taken once the container's annotations name the pin dir. */
#define HOOK_NEEDS (NEED_LOCK | NEED_LOADED | NEED_MAPS)

/* The instance the container joins: the annotation's pin dir, else --pin-dir's. -1 to go on,
 * or the exit code. */
static int open_instance(struct json_object *state, struct instance *in)
{
	struct json_object *annotations;
	const char *dir = NULL;

	if (json_object_object_get_ex(state, "annotations", &annotations))
		dir = json_string_at(annotations, PIN_DIR_ANNOTATION);
	if (dir && pin_dir_problem(dir))
		return fail("annotation %s '%s' %s", PIN_DIR_ANNOTATION, dir, pin_dir_problem(dir));
	if (dir)
		pin_dir = dir;
	return instance_open(HOOK_NEEDS, " (run 'bpfredir load' first)", in);
}

static int do_oci_hook(struct instance *in, const void *cfg)
{
	const struct oci_hook_args *args = cfg;
	bool create = args->stage == OCI_CREATE;
	char path[PATH_MAX];
	struct json_object *state;
	const char *id;
	int ret;

	state = read_json(STDIN_FILENO, "the container state on stdin");
	if (!state)
		return EXIT_FAIL;
	id = json_string_at(state, "id");
	ret = container_cgroup(state, path, sizeof(path));
	if (!ret)
		ret = open_instance(state, in);
	if (ret < 0) {
		ret = cgroup_change(&in->maps, path, create, true);
		instance_close(HOOK_NEEDS, in);
	}
	if (ret && create && args->fail_open) {
		fail("--fail-open: container %s starts without redirection", id ? id : "?");
		ret = 0;
	}
	json_object_put(state);
	return ret;
}

const struct cmd cmd_oci_hook = {
	.name = "oci-hook",
	.func = do_oci_hook,
	.opts = oci_hook_opts,
	.cfg_size = sizeof(struct oci_hook_args),
	/* The pin dir may come from the container's annotations: opened by the handler. */
	.needs = NEED_ROOT,
	.doc = "The OCI runtime hook: reads the container's state (JSON) on stdin, as podman,\n"
	       "CRI-O and runc give it, and attaches the container's cgroup (create, at the\n"
	       "createRuntime stage) or detaches it (poststop). The cgroup is the container\n"
	       "process's (/proc/PID/cgroup), else the bundle's linux.cgroupsPath (a path, or\n"
	       "systemd's slice:prefix:name). A cgroup already as asked, or removed, is done.\n"
	       "The annotation io.bpfredir.pin-dir names the instance, else --pin-dir. A failed\n"
	       "create fails the container (it does not start unredirected), unless --fail-open.\n",
};
