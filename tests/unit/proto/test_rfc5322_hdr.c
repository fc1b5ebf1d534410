/*
 * test_rfc5322_hdr.c -- counting header fields for loop detection.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "proto/rfc5322_hdr.h"

static size_t
count(const char *msg, size_t limit)
{
	return rfc5322_count_fields(msg, strlen(msg), "Received", limit);
}

Test(rfc5322_hdr, counts_fields_in_the_header_section_only)
{
	const char *msg = "Received: from a\r\n"
			  "\tby b; Mon, 1 Jan 2024 00:00:00 +0000\r\n"
			  "Subject: hi\r\n"
			  "received: from c\r\n"
			  "RECEIVED : from d\r\n"
			  "X-Received: not this one\r\n"
			  "Received-SPF: nor this\r\n"
			  "\r\n"
			  "Received: in the body, not counted\r\n";

	cr_assert_eq(count(msg, 100), 3);
}

Test(rfc5322_hdr, continuation_lines_and_prefixes_do_not_count)
{
	cr_assert_eq(count("Subject: x\r\n Received: folded\r\n\r\n", 10), 0);
	cr_assert_eq(count("Receivedx: y\r\nReceived\r\n: z\r\n\r\n", 10), 0);
	cr_assert_eq(count("", 10), 0);
	cr_assert_eq(count("\r\nReceived: body\r\n", 10), 0, "no header section at all");
}

Test(rfc5322_hdr, stops_once_over_the_limit)
{
	char msg[4096];
	size_t off = 0;

	for (int i = 0; i < 100; i++)
		off += (size_t)snprintf(msg + off, sizeof(msg) - off, "Received: hop %d\r\n", i);
	cr_assert_eq(count(msg, 30), 31);
	cr_assert_eq(count(msg, 100), 100);
	cr_assert_eq(count(msg, 99), 100);
}

Test(rfc5322_hdr, no_final_line_end_and_bare_lf)
{
	cr_assert_eq(count("Received: a\r\nReceived: b", 10), 2);
	cr_assert_eq(count("Received: a\nReceived: b\n\nReceived: c\n", 10), 2);
}
