// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The unit tests' runner: main, the -t filter, and the PASS/FAIL/SKIP lines (harness.h). */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "harness.h"

/* tests.h, made by the Makefile from the binary's source: DEFINE_TEST(NAME) for each
 * `void test_NAME(void)`, in the order they appear. */
#define DEFINE_TEST(name) void test_##name(void);
#include "tests.h"
#undef DEFINE_TEST

struct test {
	const char *name;
	void (*run)(void);
};

static const struct test tests[] = {
#define DEFINE_TEST(name) { #name, test_##name },
#include "tests.h"
#undef DEFINE_TEST
};

#define MAX_FILTERS 16

static struct {
	const char *test; /* a test's name, with or without test_ */
	const char *sub;  /* NULL, or text its subtests' names must contain */
	bool matched;
} filters[MAX_FILTERS];
static int n_filters;

static const struct test *cur_test;
static bool test_failed, test_skipped, any_failed;
static int subtests;   /* started by the running test, selected or not */
static char *sub_name; /* the running subtest, or NULL */
static bool sub_failed, sub_skipped;

static bool name_is(const char *name, const char *want)
{
	return !strcmp(name, want) || (!strncmp(want, "test_", 5) && !strcmp(name, want + 5));
}

/* Does a -t name test T (or is there no -t)? */
static bool test_selected(const struct test *t)
{
	int i;

	if (!n_filters)
		return true;
	for (i = 0; i < n_filters; i++)
		if (name_is(t->name, filters[i].test))
			return true;
	return false;
}

/* Does a -t name this subtest of the running test? Marks the filters that do. */
static bool subtest_selected(const char *name)
{
	bool any = false;
	int i;

	if (!n_filters)
		return true;
	for (i = 0; i < n_filters; i++) {
		if (!name_is(cur_test->name, filters[i].test))
			continue;
		if (!filters[i].sub || strstr(name, filters[i].sub)) {
			filters[i].matched = true;
			any = true;
		}
	}
	return any;
}

static void subtest_end(void)
{
	if (!sub_name)
		return;
	if (!sub_failed && !sub_skipped)
		printf("PASS: %s\n", sub_name);
	free(sub_name);
	sub_name = NULL;
	fflush(stdout);
}

bool test__start_subtest(const char *fmt, ...)
{
	va_list ap;
	char *name;

	subtest_end();
	subtests++;
	va_start(ap, fmt);
	if (vasprintf(&name, fmt, ap) < 0)
		name = NULL;
	va_end(ap);
	if (!name) {
		printf("FAIL: %s: out of memory naming a subtest\n", cur_test->name);
		test_failed = any_failed = true;
		return false;
	}
	if (!subtest_selected(name)) {
		free(name);
		return false;
	}
	sub_name = name;
	sub_failed = sub_skipped = false;
	return true;
}

const char *test__name(void)
{
	return sub_name ?: cur_test->name;
}

bool test__failed(void)
{
	return sub_name ? sub_failed : test_failed;
}

void test__skip(const char *feature)
{
	printf("SKIP: %s: needs %s\n", test__name(), feature);
	if (sub_name)
		sub_skipped = true;
	else
		test_skipped = true;
}

bool test__fail(const char *fmt, ...)
{
	va_list ap;

	printf("FAIL: %s: ", test__name());
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (sub_name)
		sub_failed = true;
	else
		test_failed = true;
	any_failed = true;
	return false;
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s [-l] [-t NAME[/SUBTEST]]...\n", prog);
	exit(2);
}

int main(int argc, char **argv)
{
	size_t i;
	int opt, f;

	/* Each line as it happens: run.sh reads the output of a binary it may have to kill. */
	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt(argc, argv, "lt:")) != -1) {
		char *slash;

		switch (opt) {
		case 'l':
			for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
				printf("%s\n", tests[i].name);
			return 0;
		case 't':
			if (n_filters == MAX_FILTERS)
				usage(argv[0]);
			slash = strchr(optarg, '/');
			if (slash)
				*slash++ = '\0';
			filters[n_filters].test = optarg;
			filters[n_filters++].sub = slash;
			break;
		default:
			usage(argv[0]);
		}
	}
	if (optind != argc)
		usage(argv[0]);
	/* A -t that names no test is a usage error, said before anything runs. */
	for (f = 0; f < n_filters; f++) {
		for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
			if (name_is(tests[i].name, filters[f].test))
				break;
		if (i == sizeof(tests) / sizeof(tests[0])) {
			fprintf(stderr, "%s: no test %s (-l lists them)\n", argv[0],
				filters[f].test);
			return 2;
		}
	}

	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!test_selected(&tests[i]))
			continue;
		cur_test = &tests[i];
		test_failed = test_skipped = false;
		subtests = 0;
		tests[i].run();
		subtest_end();
		/* A test without subtests is one check. */
		if (!subtests && !test_failed && !test_skipped)
			printf("PASS: %s\n", tests[i].name);
	}
	for (f = 0; f < n_filters; f++) {
		if (!filters[f].sub || filters[f].matched)
			continue;
		printf("FAIL: %s: -t %s/%s: no such subtest\n", argv[0], filters[f].test,
		       filters[f].sub);
		any_failed = true;
	}
	return any_failed;
}
