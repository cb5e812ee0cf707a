/*
 * cdc: the worker's loop. One session = connections + (copy) + stream; any
 * lost connection or transient failure ends the session, and the next one
 * starts over from what ods.cdc_sources stored, after a backoff. Within a
 * session:
 *
 *   - frames are read as they come; a source transaction's changes collect
 *     in one batch per table (flushed early in chunks when large) and go to
 *     the apply at its Commit, skipped when the stored position shows it was
 *     applied before;
 *   - every 200 ms the apply probes the ODS's WAL flush (what is durable may
 *     be confirmed to the source); every 500 ms the source is asked for its
 *     WAL position and clock, and once the worker has passed that position
 *     with nothing left to apply, that clock time is as_of ("caught up");
 *     as_of also advances with each committed source transaction;
 *   - every second (100 ms while stopping or --once) a standby status update
 *     confirms the durable position and asks for a keepalive, whose position
 *     tells how far the source has sent.
 */
#include "autoconfig.h"

#include "sync/cdc.h"

#include "core/log.h"
#include "db/db.h"
#include "sync/cdc_apply.h"
#include "sync/cdc_copy.h"
#include "sync/repl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A large source transaction goes to the ODS in chunks of this many keys per table. */
#define CHUNK_KEYS 50000

enum outcome { DONE, FATAL, RETRY };

static volatile sig_atomic_t stop_signals;

static void on_stop(int sig)
{
	(void)sig;
	stop_signals++;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct session {
	const struct cdc_opts *o;
	PGconn *ods, *src, *repl;
	struct cdc_map map;
	struct cdc_apply *apply;
	struct pgo_decoder *dec;
	struct cdc_source_state st;
	struct cdc_batch **batch; /* per table, the transaction in hand */
	/* the transaction in hand */
	bool in_txn, skip, sent;
	uint64_t txn_lsn;
	int64_t txn_time;
	/* progress */
	uint64_t received_end;    /* end of the last commit received */
	uint64_t ka_pos, ka_need; /* a keepalive's position, valid once ka_need is committed */
	uint64_t passed;          /* every source change below this is applied or not ours */
	bool probe_pending;       /* a source (position, time) waiting to be passed */
	uint64_t probe_lsn, source_wal;
	int64_t probe_time;
	long long retained;
	int64_t as_of, written_as_of;
	bool caught_up;
	uint64_t once_target;
	int64_t next_durable, next_fresh, next_status;
	char err[ODS_ERRLEN];
};

static void session_close(struct session *s)
{
	for (int i = 0; s->batch && i < s->map.n; i++)
		cdc_batch_free(s->batch[i]);
	free(s->batch);
	cdc_apply_close(s->apply);
	pgo_decoder_free(s->dec);
	PQfinish(s->repl);
	PQfinish(s->src);
	PQfinish(s->ods);
	cdc_map_free(&s->map);
}

/* Connection trouble is worth retrying; a mapping or data problem is not. */
static enum outcome failed(PGconn *conn)
{
	return conn && PQstatus(conn) != CONNECTION_OK ? RETRY : FATAL;
}

static uint64_t max64(uint64_t a, uint64_t b)
{
	return a > b ? a : b;
}

/* ---- the transaction in hand ---- */

static bool flush_table(struct session *s, int i)
{
	if (!s->batch[i] || cdc_batch_size(s->batch[i]) == 0)
		return true;
	struct cdc_batch *b = s->batch[i];
	s->batch[i] = NULL;
	s->sent = true;
	return cdc_apply_batch(s->apply, b, s->txn_lsn, s->txn_time, s->err, sizeof(s->err));
}

static struct cdc_batch *batch_for(struct session *s, struct cdc_table *t)
{
	int i = (int)(t - s->map.t);

	if (!s->batch[i])
		s->batch[i] = cdc_batch_new(t);
	return s->batch[i];
}

static bool on_change(struct session *s, const struct pgo_msg *m)
{
	struct cdc_table *t = cdc_map_find(&s->map, m->change.relid);
	struct cdc_batch *b;
	const struct pgo_tuple *old = m->change.old_kind ? &m->change.old_tuple : NULL;
	bool ok;

	if (!t || s->skip || !s->in_txn)
		return true;
	b = batch_for(s, t);
	if (m->kind == PGO_INSERT)
		ok = cdc_batch_insert(b, &m->change.new_tuple, s->err, sizeof(s->err));
	else if (m->kind == PGO_UPDATE)
		ok = cdc_batch_update(b, old, &m->change.new_tuple, s->err, sizeof(s->err));
	else
		ok = old ? cdc_batch_delete(b, old, s->err, sizeof(s->err))
		         : errf(s->err, sizeof(s->err), "a delete on %s.%s carries no key",
		                t->src_schema, t->src_table);
	if (ok && cdc_batch_size(b) >= CHUNK_KEYS)
		ok = flush_table(s, (int)(t - s->map.t));
	return ok;
}

static bool on_truncate(struct session *s, const struct pgo_msg *m)
{
	for (int r = 0; r < m->truncate.nrels; r++) {
		struct cdc_table *t = cdc_map_find(&s->map, m->truncate.relids[r]);
		if (!t || s->skip)
			continue;
		int i = (int)(t - s->map.t);
		cdc_batch_free(s->batch[i]); /* changes before the truncate are moot */
		s->batch[i] = NULL;
		s->sent = true;
		if (!cdc_apply_truncate(s->apply, t, s->err, sizeof(s->err)))
			return false;
	}
	return true;
}

static bool on_commit(struct session *s, const struct pgo_msg *m)
{
	bool ok = true;

	for (int i = 0; ok && !s->skip && i < s->map.n; i++)
		ok = flush_table(s, i);
	/* A transaction that touched none of our tables needs no ODS transaction. */
	if (ok && s->sent)
		ok = cdc_apply_commit(s->apply, m->commit.end_lsn, m->commit.commit_time, s->err,
		                      sizeof(s->err));
	s->received_end = max64(s->received_end, m->commit.end_lsn);
	s->in_txn = false;
	return ok;
}

/* One pgoutput message; false with s->err on what cannot go on. */
static bool on_message(struct session *s, const struct pgo_msg *m)
{
	switch (m->kind) {
	case PGO_BEGIN:
		s->in_txn = true;
		s->sent = false;
		s->txn_lsn = m->begin.final_lsn;
		s->txn_time = m->begin.commit_time;
		/* Its commit record lies before the stored position: applied already. */
		s->skip = m->begin.final_lsn < s->st.applied;
		return true;
	case PGO_COMMIT:
		return on_commit(s, m);
	case PGO_RELATION:
		return cdc_map_relation(&s->map, m, s->err, sizeof(s->err));
	case PGO_INSERT:
	case PGO_UPDATE:
	case PGO_DELETE:
		return on_change(s, m);
	case PGO_TRUNCATE:
		return on_truncate(s, m);
	default:
		return true; /* Origin, Type, Message: nothing to apply */
	}
}

static bool send_status(struct session *s)
{
	uint64_t durable = cdc_apply_durable(s->apply);

	/* A keepalive's position is safe to confirm once all received before it is durable. */
	if (!s->in_txn && durable >= s->ka_need)
		durable = max64(durable, s->ka_pos);
	return repl_send_status(s->repl, max64(s->received_end, s->ka_pos), durable, true, s->err,
	                        sizeof(s->err));
}

static bool on_frame(struct session *s, const uint8_t *buf, int len)
{
	struct pgo_frame f;
	struct pgo_msg m;

	if (!pgo_parse_frame(buf, (size_t)len, &f, s->err, sizeof(s->err)))
		return false;
	if (f.kind == PGO_FRAME_KEEPALIVE) {
		if (!s->in_txn) {
			s->ka_pos = max64(s->ka_pos, f.wal_end);
			s->ka_need = s->received_end;
		}
		return !f.reply_requested || send_status(s);
	}
	return pgo_decode(s->dec, f.data, f.len, &m, s->err, sizeof(s->err)) && on_message(s, &m);
}

/* ---- freshness ---- */

/*
 * Asks the source where its WAL is, by its own clock (time first, then
 * position). The position is the insert position, not pg_current_wal_lsn():
 * that is where WAL has been written, and a commit with synchronous_commit =
 * off is visible on the source before its WAL is written (the walsender
 * sends it once it is). An insert position that lies just past a page header
 * (the WAL ends on a page boundary) is taken back to the boundary: no record
 * ends inside a header, and a record end is what positions are compared with.
 */
static bool probe_source(struct session *s)
{
	const char *params[] = {s->st.slot};
	PGresult *res = PQexecParams(
	        s->src,
	        "SELECT (extract(epoch FROM t) * 1000000)::bigint, l,"
	        "  (SELECT (l - restart_lsn)::bigint FROM pg_replication_slots WHERE slot_name = "
	        "$1)"
	        "  FROM (SELECT clock_timestamp() AS t OFFSET 0) a,"
	        "       LATERAL (SELECT pg_current_wal_insert_lsn() AS i,"
	        "                       current_setting('wal_block_size')::numeric AS bs OFFSET 0) "
	        "b,"
	        "       LATERAL (SELECT CASE WHEN (i - '0/0') % bs IN (24, 40)"
	        "                       THEN i - (i - '0/0') % bs ELSE i END AS l) c",
	        1, NULL, params, NULL, NULL, 0);
	bool ok = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1;
	uint64_t lsn = 0;

	if (!ok)
		db_fail(s->src, res, s->err, sizeof(s->err));
	else if (pgo_lsn_parse(PQgetvalue(res, 0, 1), &lsn)) {
		s->source_wal = lsn;
		s->retained =
		        PQgetisnull(res, 0, 2) ? -1 : strtoll(PQgetvalue(res, 0, 2), NULL, 10);
		if (!s->probe_pending) {
			s->probe_pending = true;
			s->probe_lsn = lsn;
			s->probe_time = strtoll(PQgetvalue(res, 0, 0), NULL, 10) -
			                PGO_EPOCH_OFFSET * 1000000;
		}
	}
	PQclear(res);
	return ok;
}

/* What the applied and passed positions say now about as_of. */
static void advance(struct session *s)
{
	uint64_t committed = cdc_apply_committed(s->apply);
	int64_t t = cdc_apply_committed_time(s->apply);

	s->passed = max64(s->passed, committed);
	if (!s->in_txn && committed >= s->ka_need && cdc_apply_in_flight(s->apply) == 0)
		s->passed = max64(s->passed, s->ka_pos);
	if (t > s->as_of)
		s->as_of = t;
	s->caught_up = s->probe_pending && s->passed >= s->probe_lsn && !s->in_txn &&
	               cdc_apply_in_flight(s->apply) == 0;
	if (s->caught_up) {
		if (s->probe_time > s->as_of)
			s->as_of = s->probe_time;
		s->probe_pending = false;
	}
}

static bool write_freshness(struct session *s, const char *state)
{
	struct cdc_progress p = {
	        .state = state,
	        .as_of = s->as_of,
	        .caught_up = s->caught_up,
	        .source_wal = s->source_wal,
	        .lag_bytes = s->source_wal > s->passed ? (long long)(s->source_wal - s->passed) : 0,
	        .retained = s->retained,
	};

	s->written_as_of = s->as_of;
	return cdc_apply_freshness(s->apply, &p, s->err, sizeof(s->err));
}

/* ---- the session ---- */

static enum outcome start(struct session *s)
{
	const struct cdc_opts *o = s->o;

	s->ods = db_connect(o->db, "odsctl sync run", s->err, sizeof(s->err));
	if (!s->ods)
		return RETRY;
	if (!cdc_map_load(s->ods, o->name, o->tables, &s->map, s->err, sizeof(s->err)) ||
	    !cdc_state_read(s->ods, o->name, &s->map, &s->st, s->err, sizeof(s->err)))
		return failed(s->ods);
	s->src = db_connect(o->source, "odsctl sync run", s->err, sizeof(s->err));
	if (!s->src)
		return RETRY;
	if (!cdc_map_check_source(s->src, &s->map, s->err, sizeof(s->err)))
		return failed(s->src);
	if (!s->st.copied) {
		if (!cdc_copy(s->ods, s->src, o->source, o->name, &s->map, &s->st, &s->repl, s->err,
		              sizeof(s->err)))
			return failed(PQstatus(s->ods) != CONNECTION_OK ? s->ods : s->src);
	} else if (!(s->repl = repl_connect(o->source, s->err, sizeof(s->err)))) {
		return RETRY;
	}
	for (int i = 0; i < s->map.n; i++) {
		const char *params[] = {s->map.t[i].target};
		char *sql =
		        xasprintf("UPDATE ods.synced_tables SET rows = (SELECT count(*) FROM %s)"
		                  " WHERE table_name = $1",
		                  s->map.t[i].qtarget);
		bool ok = db_exec_params(s->ods, sql, 1, params, s->err, sizeof(s->err));
		free(sql);
		if (!ok)
			return failed(s->ods);
	}
	s->apply = cdc_apply_open(o->db, o->name, &s->map, s->st.applied, s->err, sizeof(s->err));
	if (!s->apply)
		return RETRY;
	if (!repl_start(s->repl, s->st.slot, s->st.publication, s->st.applied, s->err,
	                sizeof(s->err)))
		return failed(s->repl);
	s->dec = pgo_decoder_new();
	s->batch = xcalloc((size_t)s->map.n + 1, sizeof(*s->batch));
	s->received_end = s->passed = s->st.applied;
	if (!probe_source(s))
		return RETRY;
	s->once_target = s->source_wal;
	return write_freshness(s, "streaming") ? DONE : RETRY;
}

/* Stops cleanly: everything sent is answered, the durable position confirmed. */
static enum outcome finish(struct session *s)
{
	int64_t deadline = mono_ms() + 3000;

	if (!cdc_apply_pump(s->apply, true, s->err, sizeof(s->err)))
		return cdc_apply_transient(s->apply) ? RETRY : FATAL;
	while (cdc_apply_durable(s->apply) < cdc_apply_committed(s->apply) &&
	       mono_ms() < deadline) {
		struct timespec pause = {0, 50 * 1000 * 1000};
		if (!cdc_apply_probe(s->apply, s->err, sizeof(s->err)) ||
		    !cdc_apply_pump(s->apply, true, s->err, sizeof(s->err)))
			return RETRY;
		nanosleep(&pause, NULL);
	}
	advance(s);
	if (!write_freshness(s, "stopped") ||
	    !cdc_apply_pump(s->apply, true, s->err, sizeof(s->err)))
		return RETRY;
	/* Confirm, and wait (bounded) for the keepalive that answers it: then the
	 * source has taken the confirmation before we hang up. */
	if (PQsetnonblocking(s->repl, 0) != 0 || !send_status(s)) {
		log_warn("sync run: %s", s->err);
		return DONE;
	}
	for (deadline = mono_ms() + 2000; mono_ms() < deadline;) {
		uint8_t *buf;
		int len, got = repl_read(s->repl, &buf, &len, s->err, sizeof(s->err));
		struct pollfd pfd = {.fd = PQsocket(s->repl), .events = POLLIN};
		if (got < 0)
			break;
		if (got == 1) {
			bool keepalive = len > 0 && buf[0] == PGO_FRAME_KEEPALIVE;
			PQfreemem(buf);
			if (keepalive)
				break;
			continue;
		}
		poll(&pfd, 1, 50);
	}
	return DONE;
}

static enum outcome stream(struct session *s)
{
	for (;;) {
		uint8_t *buf;
		int len, got;
		int64_t now = mono_ms();

		while ((got = repl_read(s->repl, &buf, &len, s->err, sizeof(s->err))) == 1) {
			bool ok = on_frame(s, buf, len);
			PQfreemem(buf);
			if (!ok)
				return cdc_apply_transient(s->apply) ? RETRY : FATAL;
		}
		if (got < 0)
			return RETRY;
		if (!cdc_apply_pump(s->apply, false, s->err, sizeof(s->err)))
			return cdc_apply_transient(s->apply) ? RETRY : FATAL;
		advance(s);
		/* Probes and freshness go between transactions, never inside one. */
		bool between = !cdc_apply_in_txn(s->apply);
		if (between && now >= s->next_durable) {
			s->next_durable = now + 200;
			if (cdc_apply_durable(s->apply) < cdc_apply_committed(s->apply) &&
			    !cdc_apply_probe(s->apply, s->err, sizeof(s->err)))
				return RETRY;
		}
		if (between && now >= s->next_fresh) {
			s->next_fresh = now + 500;
			if (!probe_source(s))
				return RETRY;
			advance(s);
			if (s->as_of != s->written_as_of && !write_freshness(s, "streaming"))
				return RETRY;
		}
		bool ending = stop_signals || s->o->once;
		if (now >= s->next_status) {
			s->next_status = now + (ending ? 100 : 1000);
			if (!send_status(s))
				return RETRY;
		}
		if (!s->in_txn && (stop_signals || (s->o->once && s->passed >= s->once_target &&
		                                    cdc_apply_in_flight(s->apply) == 0)))
			return finish(s);
		struct pollfd pfd[2] = {{.fd = PQsocket(s->repl), .events = POLLIN},
		                        {.fd = cdc_apply_socket(s->apply), .events = POLLIN}};
		if (poll(pfd, 2, ending ? 20 : 100) < 0 && errno != EINTR)
			return RETRY;
	}
}

int cdc_run(const struct cdc_opts *o)
{
	struct sigaction sa;
	int backoff_ms = 250;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		struct session s = {.o = o};
		enum outcome r = start(&s);
		int64_t began = mono_ms();

		if (r == DONE) {
			log_info("sync run: source %s streaming from %X/%X", o->name,
			         (unsigned)(s.st.applied >> 32), (unsigned)s.st.applied);
			r = stream(&s);
		}
		if (r == DONE) {
			session_close(&s);
			log_info("sync run: source %s stopped", o->name);
			return 0;
		}
		if (r == FATAL) {
			PGconn *c = s.ods && PQstatus(s.ods) == CONNECTION_OK
			                    ? s.ods
			                    : db_connect(o->db, "odsctl sync run", NULL, 0);
			/* The error takes over a failed connection: state on a fresh one. */
			if (s.ods && c == s.ods && PQtransactionStatus(c) != PQTRANS_IDLE)
				PQclear(PQexec(c, "ROLLBACK"));
			if (c)
				cdc_state_write(c, o->name, "error", s.err);
			if (c && c != s.ods)
				PQfinish(c);
			fprintf(stderr, "odsctl sync run: %s\n", s.err);
			session_close(&s);
			return 1;
		}
		log_warn("sync run: source %s: %s; reconnecting in %d ms", o->name, s.err,
		         backoff_ms);
		if (s.ods && PQstatus(s.ods) == CONNECTION_OK) {
			PQclear(PQexec(s.ods, "ROLLBACK"));
			cdc_state_write(s.ods, o->name, "reconnecting", s.err);
		}
		session_close(&s);
		backoff_ms = mono_ms() - began > 30000 ? 250 : backoff_ms;
		for (int64_t until = mono_ms() + backoff_ms; mono_ms() < until && !stop_signals;) {
			struct timespec pause = {0, 20 * 1000 * 1000};
			nanosleep(&pause, NULL);
		}
		if (stop_signals)
			return 0;
		backoff_ms = backoff_ms * 2 > 10000 ? 10000 : backoff_ms * 2;
	}
}
