/*
 * libFuzzer target: sync/pgoutput.c. Each input is taken three ways: as a
 * CopyData payload (pgo_parse_frame, and pgo_decode of an XLogData frame's
 * message), as a pgoutput message itself (pgo_decode, on the same decoder,
 * so its arrays are reused at other sizes), and as LSN text (pgo_lsn_parse,
 * which must round-trip through pgo_lsn_format). Every decoded field is
 * read so ASan sees any pointer outside the input. Build and run:
 * tests/fuzz/README.md.
 */
#include "autoconfig.h"

#include "sync/pgoutput.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile size_t sink;

/* A pointer the decoder returns must lie inside the input. */
static void check_inside(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	uintptr_t q = (uintptr_t)p, b = (uintptr_t)buf;

	if (!p || q < b || n > len || q - b > len - n)
		abort();
}

static void touch_bytes(const void *p, size_t n, const uint8_t *buf, size_t len)
{
	const uint8_t *q = p;

	check_inside(p, n, buf, len);
	for (size_t i = 0; i < n; i++)
		sink += q[i];
}

static void touch_str(const char *s, const uint8_t *buf, size_t len)
{
	touch_bytes(s, strlen(s) + 1, buf, len);
}

static void touch_tuple(const struct pgo_tuple *t, const uint8_t *buf, size_t len)
{
	for (int i = 0; i < t->n; i++) {
		const struct pgo_value *v = &t->v[i];

		if (v->kind != 'n' && v->kind != 'u' && v->kind != 't')
			abort();
		if (v->kind == 't')
			touch_bytes(v->data, v->len, buf, len);
		else if (v->data || v->len)
			abort();
	}
}

static void touch_msg(const struct pgo_msg *m, const uint8_t *buf, size_t len)
{
	switch (m->kind) {
	case PGO_BEGIN:
		sink += m->begin.final_lsn + (uint64_t)m->begin.commit_time + m->begin.xid;
		break;
	case PGO_COMMIT:
		sink += m->commit.flags + m->commit.commit_lsn + m->commit.end_lsn;
		sink += (uint64_t)m->commit.commit_time;
		break;
	case PGO_ORIGIN:
		sink += m->origin.lsn;
		touch_str(m->origin.name, buf, len);
		break;
	case PGO_RELATION:
		sink += m->relation.relid + (unsigned char)m->relation.replident;
		touch_str(m->relation.nspname, buf, len);
		touch_str(m->relation.relname, buf, len);
		for (int i = 0; i < m->relation.ncols; i++) {
			const struct pgo_column *c = &m->relation.cols[i];

			touch_str(c->name, buf, len);
			sink += c->key + c->type_oid + (uint32_t)c->typmod;
		}
		break;
	case PGO_TYPE:
		sink += m->type.oid;
		touch_str(m->type.nspname, buf, len);
		touch_str(m->type.typname, buf, len);
		break;
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE:
		sink += m->change.relid + (unsigned char)m->change.old_kind;
		touch_tuple(&m->change.old_tuple, buf, len);
		touch_tuple(&m->change.new_tuple, buf, len);
		break;
	case PGO_TRUNCATE:
		sink += m->truncate.options;
		for (int i = 0; i < m->truncate.nrels; i++)
			sink += m->truncate.relids[i];
		break;
	case PGO_MESSAGE:
		sink += m->message.flags + m->message.lsn;
		touch_str(m->message.prefix, buf, len);
		touch_bytes(m->message.content, m->message.len, buf, len);
		break;
	default:
		abort(); /* a message decoded with a kind the header does not list */
	}
}

/* A decode that fails must say where. */
static void decode(struct pgo_decoder *d, const uint8_t *buf, size_t len)
{
	char err[ODS_ERRLEN];
	struct pgo_msg m;

	err[0] = '\0';
	if (pgo_decode(d, buf, len, &m, err, sizeof(err)))
		touch_msg(&m, buf, len);
	else if (!strstr(err, " at byte "))
		abort();
}

static void lsn_round_trip(const uint8_t *data, size_t size)
{
	char text[64], back[20];
	uint64_t lsn, again;

	if (size >= sizeof(text))
		return;
	memcpy(text, data, size);
	text[size] = '\0';
	if (!pgo_lsn_parse(text, &lsn))
		return;
	pgo_lsn_format(lsn, back, sizeof(back));
	if (!pgo_lsn_parse(back, &again) || again != lsn)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pgo_decoder *d = pgo_decoder_new();
	char err[ODS_ERRLEN];
	struct pgo_frame f;

	if (pgo_parse_frame(data, size, &f, err, sizeof(err))) {
		sink += f.wal_start + f.wal_end + (uint64_t)f.send_time + f.reply_requested;
		if (f.kind == PGO_FRAME_XLOGDATA) {
			check_inside(f.data, f.len, data, size);
			decode(d, f.data, f.len);
		}
	}
	decode(d, data, size);
	lsn_round_trip(data, size);
	pgo_decoder_free(d);
	return 0;
}
