/*
 * pgoutput: a decoder for what a logical replication stream carries, and the
 * one message a client sends back. Pure functions over byte buffers, no I/O,
 * so every byte of hostile input can be tested and fuzzed.
 *
 * Two layers (PostgreSQL docs, "Streaming Replication Protocol" and "Logical
 * Replication Message Formats"):
 *   - the CopyBoth frame: 'w' XLogData (dataStart, walEnd, sendTime, then a
 *     pgoutput message) or 'k' primary keepalive (walEnd, sendTime,
 *     replyRequested);
 *   - the pgoutput message inside XLogData, proto_version 1 with text tuples:
 *     Begin, Commit, Origin, Relation, Type, Insert, Update, Delete, Truncate,
 *     Message.
 *
 * All integers are big-endian. Timestamps are microseconds since
 * 2000-01-01 00:00:00 UTC (PostgreSQL's epoch), as the protocol sends them.
 *
 * Ownership: a decoded message points into the input buffer (strings, which
 * the protocol NUL-terminates, and tuple values, which it length-prefixes)
 * and into arrays the decoder owns. Everything is valid until the next
 * pgo_decode() on the same decoder or until the input buffer is freed,
 * whichever comes first. Callers copy what they keep.
 */
#ifndef ODS_PGOUTPUT_H
#define ODS_PGOUTPUT_H

#include "core/util.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Seconds between the Unix epoch and PostgreSQL's (2000-01-01 UTC). */
#define PGO_EPOCH_OFFSET 946684800LL

/* ---- the CopyBoth frame ---- */

enum pgo_frame_kind { PGO_FRAME_XLOGDATA = 'w', PGO_FRAME_KEEPALIVE = 'k' };

struct pgo_frame {
	char kind;            /* enum pgo_frame_kind */
	uint64_t wal_start;   /* 'w' only: dataStart */
	uint64_t wal_end;     /* both: the server's walEnd */
	int64_t send_time;    /* both: server clock at sending, PostgreSQL epoch us */
	bool reply_requested; /* 'k' only */
	const uint8_t *data;  /* 'w' only: the pgoutput message */
	size_t len;
};

/* Splits one CopyData payload. False (err filled) on a truncated or unknown frame. */
bool pgo_parse_frame(const uint8_t *buf, size_t len, struct pgo_frame *f, char *err,
                     size_t errlen) ODS_MUST_CHECK;

/* Writes the 34-byte standby status update ('r') the client sends:
 * written/flushed/applied LSNs, the client's clock (PostgreSQL epoch us) and
 * whether the server should answer at once with a keepalive. */
#define PGO_STATUS_LEN 34
void pgo_status_update(uint8_t out[PGO_STATUS_LEN], uint64_t written, uint64_t flushed,
                       uint64_t applied, int64_t now, bool reply_requested);

/* ---- pgoutput messages ---- */

enum pgo_kind {
	PGO_BEGIN = 'B',
	PGO_COMMIT = 'C',
	PGO_ORIGIN = 'O',
	PGO_RELATION = 'R',
	PGO_TYPE = 'Y',
	PGO_INSERT = 'I',
	PGO_UPDATE = 'U',
	PGO_DELETE = 'D',
	PGO_TRUNCATE = 'T',
	PGO_MESSAGE = 'M',
};

/* One column of a Relation message. */
struct pgo_column {
	const char *name;
	bool key; /* part of the replica identity (flags bit 1) */
	uint32_t type_oid;
	int32_t typmod;
};

/* One value of a TupleData: 'n' NULL, 'u' unchanged TOASTed value (not sent),
 * 't' text (data/len, not NUL-terminated). Binary ('b') is refused: we never
 * ask for it. */
struct pgo_value {
	char kind;
	const char *data;
	uint32_t len;
};

struct pgo_tuple {
	int n;
	struct pgo_value *v; /* owned by the decoder */
};

struct pgo_msg {
	char kind; /* enum pgo_kind */
	union {
		struct {
			uint64_t final_lsn; /* the commit record's LSN */
			int64_t commit_time;
			uint32_t xid;
		} begin;
		struct {
			uint8_t flags;
			uint64_t commit_lsn;
			uint64_t end_lsn; /* the end of the commit record: where to resume */
			int64_t commit_time;
		} commit;
		struct {
			uint64_t lsn;
			const char *name;
		} origin;
		struct {
			uint32_t relid;
			const char *nspname; /* "" for pg_catalog, as the protocol sends it */
			const char *relname;
			char replident; /* 'd' default, 'n' nothing, 'f' full, 'i' index */
			int ncols;
			struct pgo_column *cols; /* owned by the decoder */
		} relation;
		struct {
			uint32_t oid;
			const char *nspname;
			const char *typname;
		} type;
		/* Insert: new_tuple. Update: new_tuple, and old_tuple when old_kind is
		 * 'K' (key columns of the old row: the key changed) or 'O' (the whole
		 * old row: REPLICA IDENTITY FULL); old_kind 0 when absent. Delete:
		 * old_tuple with old_kind 'K' or 'O'. */
		struct {
			uint32_t relid;
			char old_kind;
			struct pgo_tuple old_tuple;
			struct pgo_tuple new_tuple;
		} change;
		struct {
			uint8_t options; /* 1 CASCADE, 2 RESTART IDENTITY */
			int nrels;
			uint32_t *relids; /* owned by the decoder */
		} truncate;
		struct {
			uint8_t flags; /* 1: transactional */
			uint64_t lsn;
			const char *prefix;
			const uint8_t *content;
			uint32_t len;
		} message;
	};
};

/* Reusable storage for decoded arrays (columns, values, relation ids). */
struct pgo_decoder;

struct pgo_decoder *pgo_decoder_new(void);
void pgo_decoder_free(struct pgo_decoder *d);

/*
 * Decodes one pgoutput message (the data of an XLogData frame). False (err
 * filled with what is wrong and at which byte) on anything malformed: a
 * length past the end, a string without its NUL, a count that cannot fit the
 * bytes left, an unknown message or tuple kind, trailing bytes. Never reads
 * outside buf[0..len).
 */
bool pgo_decode(struct pgo_decoder *d, const uint8_t *buf, size_t len, struct pgo_msg *m, char *err,
                size_t errlen) ODS_MUST_CHECK;

/* "X/Y", PostgreSQL's text form of an LSN, into out (at least 20 bytes). */
void pgo_lsn_format(uint64_t lsn, char *out, size_t outlen);
/* Parses "X/Y"; false when it is not one. */
bool pgo_lsn_parse(const char *s, uint64_t *lsn) ODS_MUST_CHECK;

#endif
