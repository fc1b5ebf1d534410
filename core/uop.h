/*
 * uop.h -- the io_uring user_data layout: | gen:32 | slot:24 | kind:8 |.
 *
 * Every SQE carries the kind of operation, the pool slot of its owner and
 * the owner's generation, never a bare pointer: a completion that arrives
 * after its owner was freed and the slot reused is recognised by the
 * generation mismatch and dropped (STYLE rule 2). Kind 0 is invalid so a
 * zeroed user_data can never be mistaken for a real operation.
 */
#ifndef SLUICE_CORE_UOP_H
#define SLUICE_CORE_UOP_H

#include <stdint.h>

enum uop_kind {
	UOP_INVALID = 0,
	UOP_ACCEPT,	/* multishot accept on a listener; slot = listener index */
	UOP_RECV,	/* client session recv (provided buffers) */
	UOP_RECV_SPOOL, /* client session recv of DATA straight into the spool */
	UOP_SEND,	/* client session send of its output */
	UOP_UP_CONNECT, /* upstream connect */
	UOP_UP_RECV,	/* upstream reply recv */
	UOP_UP_SEND,	/* upstream command or body send */
	UOP_UP_SENDZC,	/* upstream body send with zero copy (two CQEs) */
	UOP_TICK,	/* the shard's periodic timer */
	UOP_WAKE,	/* the shard's eventfd (shutdown request) */
	UOP_CANCEL,	/* cancel of a closing session's operations; result unused */
	UOP_DNS_POLL,	/* poll on a resolver socket; slot = watch index (core/dns) */
	UOP__COUNT
};

/* Pack kind, slot (24 bits) and generation into one user_data value. */
static inline uint64_t
uop_pack(enum uop_kind k, uint32_t slot, uint32_t gen)
{
	return (uint64_t)gen << 32 | (uint64_t)(slot & 0xffffff) << 8 | (uint64_t)k;
}

static inline enum uop_kind
uop_kind(uint64_t ud)
{
	return (enum uop_kind)(ud & 0xff);
}

static inline uint32_t
uop_slot(uint64_t ud)
{
	return (uint32_t)(ud >> 8) & 0xffffff;
}

static inline uint32_t
uop_gen(uint64_t ud)
{
	return (uint32_t)(ud >> 32);
}

#endif /* SLUICE_CORE_UOP_H */
