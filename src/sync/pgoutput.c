/* temporary decoder, replaced by the helper's */
#include "autoconfig.h"
#include "sync/pgoutput.h"
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pgo_decoder {
	struct pgo_column *cols; int ncols_cap;
	struct pgo_value *vals[2]; int vals_cap[2];
	uint32_t *relids; int relids_cap;
};
struct rd { const uint8_t *p; size_t len, pos; char *err; size_t errlen; bool bad; };

static bool need(struct rd *r, size_t n)
{
	if (r->bad) return false;
	if (r->len - r->pos < n) { r->bad = true; errf(r->err, r->errlen, "truncated at byte %zu", r->pos); return false; }
	return true;
}
static uint64_t u(struct rd *r, int n)
{
	uint64_t v = 0;
	if (!need(r, (size_t)n)) return 0;
	for (int i = 0; i < n; i++) v = (v << 8) | r->p[r->pos++];
	return v;
}
static const char *str(struct rd *r)
{
	if (r->bad) return "";
	const void *z = memchr(r->p + r->pos, 0, r->len - r->pos);
	if (!z) { r->bad = true; errf(r->err, r->errlen, "unterminated string at byte %zu", r->pos); return ""; }
	const char *s = (const char *)r->p + r->pos;
	r->pos = (size_t)((const uint8_t *)z - r->p) + 1;
	return s;
}
bool pgo_parse_frame(const uint8_t *buf, size_t len, struct pgo_frame *f, char *err, size_t errlen)
{
	struct rd r = {buf, len, 0, err, errlen, false};
	memset(f, 0, sizeof(*f));
	f->kind = (char)u(&r, 1);
	if (f->kind == 'w') { f->wal_start = u(&r, 8); f->wal_end = u(&r, 8); f->send_time = (int64_t)u(&r, 8); f->data = buf + r.pos; f->len = r.bad ? 0 : len - r.pos; }
	else if (f->kind == 'k') { f->wal_end = u(&r, 8); f->send_time = (int64_t)u(&r, 8); f->reply_requested = u(&r, 1) != 0; }
	else if (!r.bad) return errf(err, errlen, "unknown frame kind");
	return !r.bad;
}
void pgo_status_update(uint8_t out[PGO_STATUS_LEN], uint64_t w, uint64_t fl, uint64_t ap, int64_t now, bool reply)
{
	uint64_t v[4] = {w, fl, ap, (uint64_t)now};
	out[0] = 'r';
	for (int k = 0; k < 4; k++) for (int i = 0; i < 8; i++) out[1 + k * 8 + i] = (uint8_t)(v[k] >> (56 - 8 * i));
	out[33] = reply;
}
struct pgo_decoder *pgo_decoder_new(void) { return xcalloc(1, sizeof(struct pgo_decoder)); }
void pgo_decoder_free(struct pgo_decoder *d) { if (!d) return; free(d->cols); free(d->vals[0]); free(d->vals[1]); free(d->relids); free(d); }
static bool tuple(struct rd *r, struct pgo_decoder *d, int which, struct pgo_tuple *t)
{
	int n = (int)(int16_t)u(r, 2);
	if (r->bad) return false;
	if (n < 0 || (size_t)n > r->len - r->pos) { r->bad = true; return errf(r->err, r->errlen, "bad column count"); }
	if (n > d->vals_cap[which]) { d->vals_cap[which] = n; d->vals[which] = xrealloc(d->vals[which], (size_t)n * sizeof(struct pgo_value)); }
	t->n = n; t->v = d->vals[which];
	for (int i = 0; i < n && !r->bad; i++) {
		char k = (char)u(r, 1);
		t->v[i].kind = k; t->v[i].data = NULL; t->v[i].len = 0;
		if (k == 't') { uint32_t l = (uint32_t)u(r, 4); if (!need(r, l)) return false; t->v[i].data = (const char *)r->p + r->pos; t->v[i].len = l; r->pos += l; }
		else if (k != 'n' && k != 'u') { r->bad = true; return errf(r->err, r->errlen, "bad tuple kind"); }
	}
	return !r->bad;
}
bool pgo_decode(struct pgo_decoder *d, const uint8_t *buf, size_t len, struct pgo_msg *m, char *err, size_t errlen)
{
	struct rd r = {buf, len, 0, err, errlen, false};
	memset(m, 0, sizeof(*m));
	m->kind = (char)u(&r, 1);
	switch (m->kind) {
	case 'B': m->begin.final_lsn = u(&r, 8); m->begin.commit_time = (int64_t)u(&r, 8); m->begin.xid = (uint32_t)u(&r, 4); break;
	case 'C': m->commit.flags = (uint8_t)u(&r, 1); m->commit.commit_lsn = u(&r, 8); m->commit.end_lsn = u(&r, 8); m->commit.commit_time = (int64_t)u(&r, 8); break;
	case 'O': m->origin.lsn = u(&r, 8); m->origin.name = str(&r); break;
	case 'Y': m->type.oid = (uint32_t)u(&r, 4); m->type.nspname = str(&r); m->type.typname = str(&r); break;
	case 'R': {
		m->relation.relid = (uint32_t)u(&r, 4); m->relation.nspname = str(&r); m->relation.relname = str(&r);
		m->relation.replident = (char)u(&r, 1);
		int n = (int)(int16_t)u(&r, 2);
		if (r.bad) break;
		if (n < 0 || (size_t)n > r.len - r.pos) return errf(err, errlen, "bad column count");
		if (n > d->ncols_cap) { d->ncols_cap = n; d->cols = xrealloc(d->cols, (size_t)n * sizeof(*d->cols)); }
		m->relation.ncols = n; m->relation.cols = d->cols;
		for (int i = 0; i < n && !r.bad; i++) { d->cols[i].key = (u(&r, 1) & 1) != 0; d->cols[i].name = str(&r); d->cols[i].type_oid = (uint32_t)u(&r, 4); d->cols[i].typmod = (int32_t)u(&r, 4); }
		break;
	}
	case 'I': m->change.relid = (uint32_t)u(&r, 4); if (u(&r, 1) != 'N' && !r.bad) return errf(err, errlen, "bad insert"); tuple(&r, d, 1, &m->change.new_tuple); break;
	case 'U': {
		m->change.relid = (uint32_t)u(&r, 4);
		char k = (char)u(&r, 1);
		if (k == 'K' || k == 'O') { m->change.old_kind = k; tuple(&r, d, 0, &m->change.old_tuple); k = (char)u(&r, 1); }
		if (k != 'N' && !r.bad) return errf(err, errlen, "bad update");
		tuple(&r, d, 1, &m->change.new_tuple); break;
	}
	case 'D': {
		m->change.relid = (uint32_t)u(&r, 4);
		char k = (char)u(&r, 1);
		if (k != 'K' && k != 'O' && !r.bad) return errf(err, errlen, "bad delete");
		m->change.old_kind = k; tuple(&r, d, 0, &m->change.old_tuple); break;
	}
	case 'T': {
		int n = (int)(int32_t)u(&r, 4);
		m->truncate.options = (uint8_t)u(&r, 1);
		if (r.bad) break;
		if (n < 0 || (size_t)n > (r.len - r.pos) / 4) return errf(err, errlen, "bad relation count");
		if (n > d->relids_cap) { d->relids_cap = n; d->relids = xrealloc(d->relids, (size_t)n * 4); }
		m->truncate.nrels = n; m->truncate.relids = d->relids;
		for (int i = 0; i < n; i++) d->relids[i] = (uint32_t)u(&r, 4);
		break;
	}
	case 'M': { m->message.flags = (uint8_t)u(&r, 1); m->message.lsn = u(&r, 8); m->message.prefix = str(&r); uint32_t l = (uint32_t)u(&r, 4); if (need(&r, l)) { m->message.content = buf + r.pos; m->message.len = l; r.pos += l; } break; }
	default: if (!r.bad) return errf(err, errlen, "unknown message kind"); break;
	}
	if (!r.bad && r.pos != len) return errf(err, errlen, "trailing bytes");
	return !r.bad;
}
void pgo_lsn_format(uint64_t lsn, char *out, size_t n) { snprintf(out, n, "%X/%X", (unsigned)(lsn >> 32), (unsigned)lsn); }
bool pgo_lsn_parse(const char *s, uint64_t *lsn)
{
	unsigned hi, lo; int used = 0;
	if (sscanf(s, "%X/%X%n", &hi, &lo, &used) != 2 || s[used]) return false;
	*lsn = ((uint64_t)hi << 32) | lo; return true;
}
