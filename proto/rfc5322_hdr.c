/*
 * rfc5322_hdr.c -- see rfc5322_hdr.h.
 */
#include "proto/rfc5322_hdr.h"

#include <string.h>
#include <strings.h>

/* Does the line at p (n bytes to the end of the input) start field `name`? */
static int
field_is(const char *p, size_t n, const char *name, size_t namelen)
{
	size_t i = namelen;

	if (n < namelen + 1 || strncasecmp(p, name, namelen) != 0)
		return 0;
	while (i < n && (p[i] == ' ' || p[i] == '\t'))
		i++;
	return i < n && p[i] == ':';
}

size_t
rfc5322_count_fields(const char *msg, size_t len, const char *name, size_t limit)
{
	size_t namelen = strlen(name), count = 0, off = 0;

	while (off < len && count <= limit) {
		const char *eol = memchr(msg + off, '\n', len - off);
		size_t linelen = (eol != NULL ? (size_t)(eol - (msg + off)) : len - off);

		/* an empty line ("\r\n" or a lone "\n") ends the header section */
		if (linelen == 0 || (linelen == 1 && msg[off] == '\r'))
			break;
		count += (size_t)field_is(msg + off, len - off, name, namelen);
		if (eol == NULL)
			break;
		off += linelen + 1;
	}
	return count;
}
