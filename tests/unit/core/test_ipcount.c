/*
 * test_ipcount.c -- core/ipcount: per-address limits at N-1, N, N+1, IPv4
 * and IPv6 kept apart, and deletion that keeps colliding keys reachable.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "core/ipcount.h"

static struct sockaddr_storage
v4(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *a = (struct sockaddr_in *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin_family = AF_INET;
	inet_pton(AF_INET, text, &a->sin_addr);
	return ss;
}

static struct sockaddr_storage
v6(const char *text)
{
	struct sockaddr_storage ss;
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

	memset(&ss, 0, sizeof(ss));
	a->sin6_family = AF_INET6;
	inet_pton(AF_INET6, text, &a->sin6_addr);
	return ss;
}

Test(ipcount, limit_allows_n_and_refuses_n_plus_one)
{
	struct ipcount t;
	struct sockaddr_storage a = v4("192.0.2.1");

	cr_assert_eq(ipcount_init(&t, 16), 0);
	cr_assert(ipcount_add(&t, &a, 3)); /* 1 */
	cr_assert(ipcount_add(&t, &a, 3)); /* 2 = N-1 */
	cr_assert(ipcount_add(&t, &a, 3)); /* 3 = N */
	cr_assert_not(ipcount_add(&t, &a, 3), "the N+1st connection must be refused");
	ipcount_del(&t, &a);
	cr_assert(ipcount_add(&t, &a, 3), "a closed connection frees its place");
	ipcount_fini(&t);
}

Test(ipcount, zero_limit_is_unlimited_and_families_are_distinct)
{
	struct ipcount t;
	struct sockaddr_storage a = v4("192.0.2.1"), b = v6("2001:db8::1");
	struct sockaddr_storage mapped = v6("::ffff:192.0.2.1");

	cr_assert_eq(ipcount_init(&t, 16), 0);
	for (int i = 0; i < 100; i++)
		cr_assert(ipcount_add(&t, &a, 0));
	cr_assert(ipcount_add(&t, &b, 1));
	cr_assert_not(ipcount_add(&t, &b, 1));
	/* an IPv4 client seen through an IPv6 socket is the same client */
	cr_assert_not(ipcount_add(&t, &mapped, 100));
	ipcount_fini(&t);
}

Test(ipcount, deleting_keeps_every_other_key_counted)
{
	struct ipcount t;
	char text[32];

	/* a small table: 64 keys in 128 slots force probe runs and shifts */
	cr_assert_eq(ipcount_init(&t, 64), 0);
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage a;

		snprintf(text, sizeof(text), "10.0.%d.%d", i / 8, i % 8);
		a = v4(text);
		cr_assert(ipcount_add(&t, &a, 2));
	}
	for (int i = 0; i < 64; i += 2) {
		struct sockaddr_storage a;

		snprintf(text, sizeof(text), "10.0.%d.%d", i / 8, i % 8);
		a = v4(text);
		ipcount_del(&t, &a);
	}
	for (int i = 0; i < 64; i++) {
		struct sockaddr_storage a;

		snprintf(text, sizeof(text), "10.0.%d.%d", i / 8, i % 8);
		a = v4(text);
		/* odd keys still hold 1 (so limit 1 refuses); even keys hold 0 */
		cr_assert_eq(ipcount_add(&t, &a, 1), i % 2 == 0, "key %s", text);
	}
	ipcount_fini(&t);
}
