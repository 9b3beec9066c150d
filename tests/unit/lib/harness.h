/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A small test_progs for the unit tests (the kernel's tools/testing/selftests/bpf is the
 * model). A test binary is a few `void test_NAME(void)` functions, found by the Makefile
 * (grep '^void test_') and run in order by harness.c's main; `-t NAME` runs one (NAME with or
 * without its test_ prefix; a NAME that is no test exits 2), `-t NAME/TEXT` only its subtests
 * whose names contain TEXT (FAIL when none does), `-l` lists them.
 *
 * What tests/run.sh counts, one line each: `PASS: <name>` for a subtest (or a test without
 * subtests) whose asserts all held, `FAIL: <name>: <what>: <detail>` for each assert that did
 * not, `SKIP: <name>: needs <feature>` for one this kernel cannot run. A subtest is named as
 * its PASS line reads; it ends where the next starts or its test returns.
 *
 * The ASSERT_* are statement expressions that print nothing when they hold and are true then,
 * so a test can stop at the first that fails: `if (!ASSERT_OK(err, "load")) return;`.
 */
#ifndef BPFREDIR_HARNESS_H
#define BPFREDIR_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Start a subtest named by the format; false when -t leaves it out (skip its body then). */
bool test__start_subtest(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The running subtest (or test) cannot run on this kernel: `SKIP: <name>: needs FEATURE`. */
void test__skip(const char *feature);
/* Print `FAIL: <name>: ` and the message, and count the running (sub)test failed; false. */
bool test__fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Has an assert of the running subtest (or test, outside subtests) failed? */
bool test__failed(void);
/* The running subtest's name, or the test's outside subtests. */
const char *test__name(void);

#define ASSERT_TRUE(cond, what)                                                                    \
	({                                                                                         \
		bool ___ok = (cond);                                                               \
		___ok || test__fail("%s: unexpectedly false", (what));                             \
	})

#define ASSERT_FALSE(cond, what)                                                                   \
	({                                                                                         \
		bool ___ok = !(cond);                                                              \
		___ok || test__fail("%s: unexpectedly true", (what));                              \
	})

/* Integers, EXPECTED taken as ACTUAL's type (as test_progs does); printed as long long. */
#define ASSERT_EQ(actual, expected, what)                                                          \
	({                                                                                         \
		__typeof__(actual) ___a = (actual);                                                \
		__typeof__(actual) ___e = (expected);                                              \
		bool ___ok = ___a == ___e;                                                         \
		___ok || test__fail("%s: expected %lld got %lld", (what), (long long)___e,         \
				    (long long)___a);                                              \
	})

#define ASSERT_NEQ(actual, unexpected, what)                                                       \
	({                                                                                         \
		__typeof__(actual) ___a = (actual);                                                \
		__typeof__(actual) ___u = (unexpected);                                            \
		bool ___ok = ___a != ___u;                                                         \
		___ok || test__fail("%s: unexpectedly %lld", (what), (long long)___a);             \
	})

/* 0 holds; a -errno result (or -1 with errno set, as libbpf's older calls give) fails with
 * the error's text. */
#define ASSERT_OK(res, what)                                                                       \
	({                                                                                         \
		long long ___r = (res);                                                            \
		int ___e = ___r == -1 ? errno : (int)-___r;                                        \
		bool ___ok = ___r == 0;                                                            \
		___ok || test__fail("%s: %s (%lld)", (what), strerror(___e), ___r);                \
	})

/* A pointer that must not be NULL (errno says why it is). */
#define ASSERT_OK_PTR(ptr, what)                                                                   \
	({                                                                                         \
		const void *___p = (ptr);                                                          \
		bool ___ok = ___p != NULL;                                                         \
		___ok || test__fail("%s: %s", (what), strerror(errno));                            \
	})

#define ASSERT_STREQ(actual, expected, what)                                                       \
	({                                                                                         \
		const char *___a = (actual), *___e = (expected);                                   \
		bool ___ok = !strcmp(___a, ___e);                                                  \
		___ok || test__fail("%s: expected '%s' got '%s'", (what), ___e, ___a);             \
	})

/* LEN bytes equal; else the first offset where they differ and both bytes there. */
#define ASSERT_MEMEQ(actual, expected, len, what)                                                  \
	({                                                                                         \
		const unsigned char *___a = (const void *)(actual);                                \
		const unsigned char *___e = (const void *)(expected);                              \
		size_t ___n = (len), ___i = 0;                                                     \
		while (___i < ___n && ___a[___i] == ___e[___i])                                    \
			___i++;                                                                    \
		___i == ___n || test__fail("%s: byte %zu: expected %02x got %02x", (what), ___i,   \
					   ___e[___i], ___a[___i]);                                \
	})

#endif /* BPFREDIR_HARNESS_H */
