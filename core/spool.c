/*
 * spool.c -- see spool.h.
 */
#include "core/spool.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

void
spool_pool_init(struct spool_pool *sp, size_t cap, size_t budget, const char *dir)
{
	sp->free = NULL;
	sp->free_files = NULL;
	sp->cap = (cap + 4095) & ~(size_t)4095;
	sp->budget = budget;
	sp->warm = 0;
	sp->out = 0;
	sp->anon_out = 0;
	sp->nfree = 0;
	sp->nfree_files = 0;
	sp->large_out = 0;
	sp->spilled = 0;
	sp->fallback = 0;
	snprintf(sp->dir, sizeof(sp->dir), "%s", dir != NULL ? dir : "");
}

static void
spool_destroy(struct spool *s)
{
	munmap(s->base, s->cap);
	if (s->fd >= 0)
		close(s->fd);
	free(s);
}

void
spool_pool_fini(struct spool_pool *sp)
{
	struct spool *s;

	while ((s = sp->free) != NULL) {
		sp->free = s->next;
		spool_destroy(s);
	}
	while ((s = sp->free_files) != NULL) {
		sp->free_files = s->next;
		spool_destroy(s);
	}
	sp->warm = 0;
	sp->nfree = 0;
	sp->nfree_files = 0;
}

/* A new anonymous spool (not counted), or NULL. */
static struct spool *
spool_new_anon(size_t cap)
{
	struct spool *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->cap = cap;
	s->fd = -1;
	s->base = mmap(NULL, cap, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (s->base == MAP_FAILED) {
		free(s);
		return NULL;
	}
	return s;
}

/* A new file-backed spool, preallocated to cap, or NULL (see the fallback in spool.h). */
static struct spool *
spool_new_file(const struct spool_pool *sp)
{
	struct spool *s;
	int fd;

	fd = open(sp->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (fd < 0)
		return NULL;
	if (fallocate(fd, 0, 0, (off_t)sp->cap) != 0) {
		close(fd);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		close(fd);
		return NULL;
	}
	s->cap = sp->cap;
	s->fd = fd;
	s->base = mmap(NULL, s->cap, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s->base == MAP_FAILED) {
		close(fd);
		free(s);
		return NULL;
	}
	return s;
}

/* A recycled file-backed spool, preallocated again, or NULL. */
static struct spool *
spool_reuse_file(struct spool_pool *sp)
{
	struct spool *s;

	while ((s = sp->free_files) != NULL) {
		sp->free_files = s->next;
		sp->nfree_files--;
		if (fallocate(s->fd, 0, 0, (off_t)s->cap) == 0)
			return s;
		spool_destroy(s); /* full disk: the fallback below decides */
	}
	return NULL;
}

struct spool *
spool_get(struct spool_pool *sp)
{
	struct spool *s = sp->free;

	if (s != NULL) {
		sp->free = s->next;
		sp->nfree--;
		sp->warm -= s->touched;
	} else if ((s = spool_new_anon(sp->cap)) == NULL) {
		return NULL;
	}
	s->next = NULL;
	s->len = 0;
	s->refs = 1;
	s->large = false;
	sp->out++;
	sp->anon_out++;
	return s;
}

bool
spool_grow_ok(struct spool_pool *sp, struct spool *s)
{
	if (s->fd >= 0 || s->large)
		return true;
	if (((size_t)sp->large_out + 1) * sp->cap > sp->budget)
		return false;
	s->large = true;
	sp->large_out++;
	return true;
}

struct spool *
spool_spill(struct spool_pool *sp, struct spool *s)
{
	struct spool *f = spool_reuse_file(sp);

	if (f == NULL)
		f = spool_new_file(sp);
	if (f == NULL) {
		/* no file (see spool.h): stay in memory, over the budget, counted */
		sp->fallback++;
		s->large = true;
		sp->large_out++;
		return s;
	}
	memcpy(f->base, s->base, s->len);
	f->next = NULL;
	f->refs = 1;
	f->len = f->touched = s->len;
	f->released = f->sent_released = 0;
	f->large = false;
	sp->out++;
	sp->spilled++;
	spool_put(sp, s);
	return f;
}

void
spool_put(struct spool_pool *sp, struct spool *s)
{
	BUG_ON(s->refs == 0);
	if (--s->refs != 0)
		return; /* another upstream still sends it */
	BUG_ON(sp->out == 0);
	sp->out--;
	s->len = 0;
	if (s->fd >= 0) {
		/* drop the content's disk blocks and page cache; keep fd and mapping */
		if (sp->nfree_files >= SPOOL_FREE_FILES ||
		    fallocate(s->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0,
			      (off_t)s->cap) != 0) {
			spool_destroy(s);
			return;
		}
		s->touched = 0;
		s->next = sp->free_files;
		sp->free_files = s;
		sp->nfree_files++;
		return;
	}
	BUG_ON(sp->anon_out == 0);
	sp->anon_out--;
	if (s->large) {
		sp->large_out--;
		s->large = false;
	}
	if (s->touched > SPOOL_KEEP_BYTES && sp->warm + s->touched > SPOOL_WARM_BUDGET) {
		/* give the pages of a large message back; keep the small head warm */
		madvise(s->base + SPOOL_KEEP_BYTES, s->touched - SPOOL_KEEP_BYTES, MADV_DONTNEED);
		s->touched = SPOOL_KEEP_BYTES;
	}
	sp->warm += s->touched;
	s->next = sp->free;
	sp->free = s;
	sp->nfree++;
}

void
spool_release_written(struct spool *s)
{
	size_t upto = s->len / SPOOL_RELEASE_STEP * SPOOL_RELEASE_STEP;

	if (s->fd < 0 || upto <= s->released)
		return;
	madvise(s->base + s->released, upto - s->released, MADV_DONTNEED);
	s->released = upto;
}

void
spool_release_sent(struct spool *s, size_t sent)
{
	size_t upto = sent & ~(size_t)4095;

	if (s->fd < 0 || upto <= s->sent_released)
		return;
	madvise(s->base + s->sent_released, upto - s->sent_released, MADV_DONTNEED);
	s->sent_released = upto;
}
