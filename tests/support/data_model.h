/*
 * data_model.h -- shared pieces of the naive DATA models that the server's
 * and the load tools' DATA parsers are checked against in unit tests.
 */
#ifndef SLUICE_TESTS_SUPPORT_DATA_MODEL_H
#define SLUICE_TESTS_SUPPORT_DATA_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* xorshift64: a deterministic pseudo-random stream for generated inputs. */
uint64_t data_model_rnd(uint64_t *state);

/* Does offset i of `in` start a line? Only at 0 and after CRLF (never after
 * a bare LF or CR: RFC 5321 4.1.1.4 and the smuggling rule). */
bool data_model_bol(const char *in, size_t i);

#endif /* SLUICE_TESTS_SUPPORT_DATA_MODEL_H */
