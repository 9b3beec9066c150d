// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* json-c's writer, set to print what bpfredir's --json always printed. */
#include <stdio.h>
#include "jsonout.h"

void json_print(struct json_object *doc)
{
	/* Compact, and '/' left as is (json-c escapes it by default): paths read as paths. */
	const char *text = json_object_to_json_string_ext(
		doc, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);

	if (text)
		puts(text);
	json_object_put(doc);
}

struct json_object *json_str_or_null(const char *s)
{
	return s ? json_object_new_string(s) : NULL;
}

struct json_object *json_rate(double rate)
{
	char text[32];

	snprintf(text, sizeof(text), "%.1f", rate);
	return json_object_new_double_s(rate, text);
}

struct json_object *json_counters(const char *const *names, const __u64 *values, int n)
{
	struct json_object *obj = json_object_new_object();
	int i;

	for (i = 0; i < n; i++)
		json_add(obj, names[i], json_object_new_uint64(values[i]));
	return obj;
}
