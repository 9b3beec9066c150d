/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* --json output through json-c: each view builds its document, printed here in one place. */
#ifndef BPFREDIR_JSONOUT_H
#define BPFREDIR_JSONOUT_H

#include <stdbool.h>
#include <json-c/json.h>
#include <linux/types.h>

/* Prints doc as one compact line and frees it. */
void json_print(struct json_object *doc);
/* s, or JSON null for NULL. */
struct json_object *json_str_or_null(const char *s);
/* A rate per second, printed with one decimal. */
struct json_object *json_rate(double rate);
/* {"name": value, ...} for n counters. */
struct json_object *json_counters(const char *const *names, const __u64 *values, int n);

static inline void json_add(struct json_object *obj, const char *key, struct json_object *val)
{
	json_object_object_add(obj, key, val);
}

#endif /* BPFREDIR_JSONOUT_H */
