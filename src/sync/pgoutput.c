/*
 * pgoutput: a bounds-checked cursor over one buffer. Every read goes through
 * rd_bytes(), which refuses to step past the end. Errors are sticky, as with
 * a FILE's error flag: the first one is recorded with its byte offset, every
 * later read returns 0 (or "") without moving, and each entry point checks
 * the flag once at the end. So the decoders read like the protocol's layout,
 * field after field, with one error path.
 *
 * Counts sent by the server (columns, tuple values, relations) are checked
 * against the bytes left before anything is allocated: each element has a
 * minimum encoded size, so a count that cannot fit is a lie and is refused
 * without allocating for it.
 */
#include "autoconfig.h"

#include "sync/pgoutput.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The smallest encodings: a column is flags, "" and two int32; a tuple value
 * is its kind byte; a relation id of a Truncate is an int32. */
#define MIN_COLUMN_BYTES 10
#define MIN_VALUE_BYTES  1
#define RELID_BYTES      4

struct pgo_decoder {
	struct pgo_column *cols;
	size_t cols_cap;
	struct pgo_value *vals[2]; /* [0] old tuple, [1] new tuple: an Update has both */
	size_t vals_cap[2];
	uint32_t *relids;
	size_t relids_cap;
};

struct cursor {
	const uint8_t *buf;
	size_t len, pos;
	bool failed;     /* sticky: after the first error every read is a no-op */
	const char *msg; /* the message being read, for errors */
	char *err;
	size_t errlen;
};

static size_t left(const struct cursor *c)
{
	return c->len - c->pos;
}

/* Records the first error only, naming the message, the field and its byte. */
static void fail(struct cursor *c, size_t at, const char *what, const char *fmt, ...)
        ODS_PRINTF(4, 5);
static void fail(struct cursor *c, size_t at, const char *what, const char *fmt, ...)
{
	char problem[128];
	va_list ap;

	if (c->failed)
		return;
	c->failed = true;
	va_start(ap, fmt);
	vsnprintf(problem, sizeof(problem), fmt, ap);
	va_end(ap);
	errf(c->err, c->errlen, "%s: %s at byte %zu: %s", c->msg, what, at, problem);
}

/* The next n bytes, stepped over; NULL when they are not all there. An
 * empty value still points into the buffer, so callers may tell it from
 * an absent one. */
static const uint8_t *rd_bytes(struct cursor *c, size_t n, const char *what)
{
	const uint8_t *p = NULL;

	if (!c->failed && left(c) < n)
		fail(c, c->pos, what, "truncated (needs %zu bytes, %zu left)", n, left(c));
	if (!c->failed && c->buf) {
		p = c->buf + c->pos;
		c->pos += n;
	}
	return p;
}

/* An n-byte big-endian unsigned integer (n <= 8); 0 after an error. Signed
 * fields are cast by the caller: gcc and clang define the conversion of an
 * out-of-range value as two's complement. */
static uint64_t rd_uint(struct cursor *c, size_t n, const char *what)
{
	const uint8_t *p = rd_bytes(c, n, what);
	uint64_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

/* A length or count the protocol sends as int32: negative ones are refused. */
static uint32_t rd_len32(struct cursor *c, const char *what)
{
	size_t at = c->pos;
	uint32_t v = (uint32_t)rd_uint(c, 4, what);

	if (v > INT32_MAX) {
		fail(c, at, what, "negative (%" PRId32 ")", (int32_t)v);
		return 0;
	}
	return v;
}

/* A NUL-terminated string pointing into the buffer; "" after an error. */
static const char *rd_str(struct cursor *c, const char *what)
{
	const uint8_t *nul = NULL;
	const char *s = "";

	/* No pointer arithmetic on an empty buffer: it may be NULL. */
	if (!c->failed && left(c) > 0)
		nul = memchr(c->buf + c->pos, '\0', left(c));
	if (!nul)
		fail(c, c->pos, what, "string without its NUL");
	if (!c->failed) {
		s = (const char *)(c->buf + c->pos);
		c->pos = (size_t)(nul - c->buf) + 1;
	}
	return s;
}

/* False (and an error) when n elements of at least min bytes each cannot
 * fit in the rest of the buffer; at is where the count was read. */
static bool fits(struct cursor *c, size_t at, const char *what, uint64_t n, size_t min)
{
	if (!c->failed && n > left(c) / min)
		fail(c, at, what, "%" PRIu64 " cannot fit in the %zu bytes left", n, left(c));
	return !c->failed;
}

/* Grows a decoder array to hold n elements; it is never shrunk. */
static void *reserve(void *p, size_t *cap, size_t n, size_t size)
{
	if (n <= *cap)
		return p;
	*cap = n;
	return xrealloc(p, n * size);
}

static void rd_tuple(struct cursor *c, struct pgo_decoder *d, int slot, struct pgo_tuple *t)
{
	size_t at = c->pos;
	uint64_t n = rd_uint(c, 2, "tuple column count");

	if (!fits(c, at, "tuple column count", n, MIN_VALUE_BYTES))
		return;
	d->vals[slot] = reserve(d->vals[slot], &d->vals_cap[slot], n, sizeof(struct pgo_value));
	t->n = (int)n;
	t->v = d->vals[slot];
	for (int i = 0; i < t->n && !c->failed; i++) {
		struct pgo_value *v = &t->v[i];

		at = c->pos;
		*v = (struct pgo_value){.kind = (char)rd_uint(c, 1, "tuple value kind")};
		if (v->kind == 't') {
			v->len = rd_len32(c, "text value length");
			v->data = (const char *)rd_bytes(c, v->len, "text value");
		} else if (v->kind == 'b') {
			fail(c, at, "tuple value kind", "binary ('b') was not asked for");
		} else if (v->kind != 'n' && v->kind != 'u') {
			fail(c, at, "tuple value kind", "unknown 0x%02x (not 'n', 'u' or 't')",
			     (uint8_t)v->kind);
		}
	}
}

static void rd_relation(struct cursor *c, struct pgo_decoder *d, struct pgo_msg *m)
{
	size_t at;
	uint64_t n;

	m->relation.relid = (uint32_t)rd_uint(c, 4, "relation id");
	m->relation.nspname = rd_str(c, "namespace");
	m->relation.relname = rd_str(c, "relation name");
	at = c->pos;
	m->relation.replident = (char)rd_uint(c, 1, "replica identity");
	if (!memchr("dnfi", m->relation.replident, 4))
		fail(c, at, "replica identity", "unknown 0x%02x (not 'd', 'n', 'f' or 'i')",
		     (uint8_t)m->relation.replident);
	at = c->pos;
	n = rd_uint(c, 2, "column count");
	if (!fits(c, at, "column count", n, MIN_COLUMN_BYTES))
		return;
	d->cols = reserve(d->cols, &d->cols_cap, n, sizeof(struct pgo_column));
	m->relation.ncols = (int)n;
	m->relation.cols = d->cols;
	for (int i = 0; i < m->relation.ncols && !c->failed; i++) {
		struct pgo_column *col = &d->cols[i];

		col->key = (rd_uint(c, 1, "column flags") & 1) != 0;
		col->name = rd_str(c, "column name");
		col->type_oid = (uint32_t)rd_uint(c, 4, "column type");
		col->typmod = (int32_t)rd_uint(c, 4, "column typmod");
	}
}

/* Insert 'N' new; Update ['K'|'O' old] 'N' new; Delete 'K'|'O' old. */
static void rd_change(struct cursor *c, struct pgo_decoder *d, struct pgo_msg *m)
{
	size_t at;
	char tag;

	m->change.relid = (uint32_t)rd_uint(c, 4, "relation id");
	at = c->pos;
	tag = (char)rd_uint(c, 1, "tuple tag");
	if (m->kind == PGO_DELETE || (m->kind == PGO_UPDATE && tag != 'N')) {
		if (tag != 'K' && tag != 'O')
			fail(c, at, "tuple tag", "0x%02x, expected %s", (uint8_t)tag,
			     m->kind == PGO_DELETE ? "'K' or 'O'" : "'K', 'O' or 'N'");
		m->change.old_kind = tag;
		rd_tuple(c, d, 0, &m->change.old_tuple);
		if (m->kind == PGO_DELETE)
			return;
		at = c->pos;
		tag = (char)rd_uint(c, 1, "tuple tag");
	}
	if (tag != 'N')
		fail(c, at, "tuple tag", "0x%02x, expected 'N'", (uint8_t)tag);
	rd_tuple(c, d, 1, &m->change.new_tuple);
}

static void rd_truncate(struct cursor *c, struct pgo_decoder *d, struct pgo_msg *m)
{
	size_t at = c->pos;
	uint32_t n = rd_len32(c, "relation count");

	m->truncate.options = (uint8_t)rd_uint(c, 1, "options");
	if (!fits(c, at, "relation count", n, RELID_BYTES))
		return;
	d->relids = reserve(d->relids, &d->relids_cap, n, sizeof(uint32_t));
	m->truncate.nrels = (int)n;
	m->truncate.relids = d->relids;
	for (uint32_t i = 0; i < n; i++)
		d->relids[i] = (uint32_t)rd_uint(c, 4, "relation id");
}

static void rd_body(struct cursor *c, struct pgo_decoder *d, struct pgo_msg *m)
{
	switch (m->kind) {
	case PGO_BEGIN:
		c->msg = "Begin";
		m->begin.final_lsn = rd_uint(c, 8, "final lsn");
		m->begin.commit_time = (int64_t)rd_uint(c, 8, "commit time");
		m->begin.xid = (uint32_t)rd_uint(c, 4, "xid");
		return;
	case PGO_COMMIT:
		c->msg = "Commit";
		m->commit.flags = (uint8_t)rd_uint(c, 1, "flags");
		m->commit.commit_lsn = rd_uint(c, 8, "commit lsn");
		m->commit.end_lsn = rd_uint(c, 8, "end lsn");
		m->commit.commit_time = (int64_t)rd_uint(c, 8, "commit time");
		return;
	case PGO_ORIGIN:
		c->msg = "Origin";
		m->origin.lsn = rd_uint(c, 8, "lsn");
		m->origin.name = rd_str(c, "name");
		return;
	case PGO_RELATION:
		c->msg = "Relation";
		rd_relation(c, d, m);
		return;
	case PGO_TYPE:
		c->msg = "Type";
		m->type.oid = (uint32_t)rd_uint(c, 4, "type oid");
		m->type.nspname = rd_str(c, "namespace");
		m->type.typname = rd_str(c, "type name");
		return;
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE:
		c->msg = m->kind == PGO_INSERT   ? "Insert"
		         : m->kind == PGO_UPDATE ? "Update"
		                                 : "Delete";
		rd_change(c, d, m);
		return;
	case PGO_TRUNCATE:
		c->msg = "Truncate";
		rd_truncate(c, d, m);
		return;
	case PGO_MESSAGE:
		c->msg = "Message";
		m->message.flags = (uint8_t)rd_uint(c, 1, "flags");
		m->message.lsn = rd_uint(c, 8, "lsn");
		m->message.prefix = rd_str(c, "prefix");
		m->message.len = rd_len32(c, "content length");
		m->message.content = rd_bytes(c, m->message.len, "content");
		return;
	}
	fail(c, 0, "message kind", "unknown 0x%02x", (uint8_t)m->kind);
}

/* A message or keepalive is complete only if it used every byte. */
static void rd_end(struct cursor *c)
{
	if (left(c) != 0)
		fail(c, c->pos, "trailing bytes", "%zu after a complete message", left(c));
}

bool pgo_decode(struct pgo_decoder *d, const uint8_t *buf, size_t len, struct pgo_msg *m, char *err,
                size_t errlen)
{
	struct cursor c = {.buf = buf, .len = len, .msg = "pgoutput", .err = err, .errlen = errlen};

	memset(m, 0, sizeof(*m));
	m->kind = (char)rd_uint(&c, 1, "message kind");
	if (!c.failed)
		rd_body(&c, d, m);
	rd_end(&c);
	return !c.failed;
}

bool pgo_parse_frame(const uint8_t *buf, size_t len, struct pgo_frame *f, char *err, size_t errlen)
{
	struct cursor c = {.buf = buf, .len = len, .msg = "frame", .err = err, .errlen = errlen};

	memset(f, 0, sizeof(*f));
	f->kind = (char)rd_uint(&c, 1, "frame kind");
	if (f->kind == PGO_FRAME_XLOGDATA) {
		c.msg = "XLogData";
		f->wal_start = rd_uint(&c, 8, "wal start");
		f->wal_end = rd_uint(&c, 8, "wal end");
		f->send_time = (int64_t)rd_uint(&c, 8, "send time");
		/* The rest is the pgoutput message, whatever its length. */
		f->len = c.failed ? 0 : left(&c);
		f->data = c.failed ? NULL : buf + c.pos;
	} else if (f->kind == PGO_FRAME_KEEPALIVE) {
		c.msg = "keepalive";
		f->wal_end = rd_uint(&c, 8, "wal end");
		f->send_time = (int64_t)rd_uint(&c, 8, "send time");
		/* Any non-zero byte asks for a reply, as pg_recvlogical reads it. */
		f->reply_requested = rd_uint(&c, 1, "reply requested") != 0;
		rd_end(&c);
	} else {
		fail(&c, 0, "frame kind", "unknown 0x%02x (not 'w' or 'k')", (uint8_t)f->kind);
	}
	return !c.failed;
}

static uint8_t *put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--)
		*p++ = (uint8_t)(v >> (8 * i));
	return p;
}

void pgo_status_update(uint8_t out[PGO_STATUS_LEN], uint64_t written, uint64_t flushed,
                       uint64_t applied, int64_t now, bool reply_requested)
{
	uint8_t *p = out;

	*p++ = 'r';
	p = put_be64(p, written);
	p = put_be64(p, flushed);
	p = put_be64(p, applied);
	p = put_be64(p, (uint64_t)now);
	*p = reply_requested ? 1 : 0;
}

struct pgo_decoder *pgo_decoder_new(void)
{
	return xcalloc(1, sizeof(struct pgo_decoder));
}

void pgo_decoder_free(struct pgo_decoder *d)
{
	if (!d)
		return;
	free(d->cols);
	free(d->vals[0]);
	free(d->vals[1]);
	free(d->relids);
	free(d);
}

void pgo_lsn_format(uint64_t lsn, char *out, size_t outlen)
{
	snprintf(out, outlen, "%" PRIX32 "/%" PRIX32, (uint32_t)(lsn >> 32), (uint32_t)lsn);
}

static unsigned hex_value(char ch)
{
	if (ch >= '0' && ch <= '9')
		return (unsigned)(ch - '0');
	if (ch >= 'a' && ch <= 'f')
		return (unsigned)(ch - 'a' + 10);
	return (unsigned)(ch - 'A' + 10);
}

/* One half of an LSN: 1 to 8 hex digits, as PostgreSQL's pg_lsn_in takes
 * them (so no sign, space or 0x; more digits are refused even if zero). */
static const char *lsn_half(const char *s, uint32_t *v)
{
	size_t n = strspn(s, "0123456789abcdefABCDEF");

	if (n < 1 || n > 8)
		return NULL;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = (*v << 4) | hex_value(s[i]);
	return s + n;
}

bool pgo_lsn_parse(const char *s, uint64_t *lsn)
{
	uint32_t hi, lo;

	s = lsn_half(s, &hi);
	if (!s || *s != '/')
		return false;
	s = lsn_half(s + 1, &lo);
	if (!s || *s != '\0')
		return false;
	*lsn = ((uint64_t)hi << 32) | lo;
	return true;
}
