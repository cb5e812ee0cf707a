/*
 * util: the small things every module needs.
 *
 * Out-of-memory policy, decided once: allocation failure aborts the process
 * with a message (xmalloc and friends). A server that cannot allocate a few
 * bytes cannot answer usefully either, and every caller stays simple.
 *
 * strbuf is a growable byte buffer that is always NUL-terminated; the caller
 * owns it and releases it with strbuf_free.
 */
#ifndef ODS_UTIL_H
#define ODS_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define ODS_MUST_CHECK   __attribute__((warn_unused_result))
#define ODS_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ODS_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The size of the error buffers functions fill in: one line for a human. */
#define ODS_ERRLEN 512

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) ODS_PRINTF(1, 2);

/* snprintf into err (if not NULL); returns false so callers can `return errf(...)`. */
bool errf(char *err, size_t errlen, const char *fmt, ...) ODS_PRINTF(3, 4);

struct strbuf {
	char *data;
	size_t len;
	size_t cap;
};

void strbuf_init(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);
void strbuf_grow(struct strbuf *sb, size_t extra);
void strbuf_add(struct strbuf *sb, const void *p, size_t n);
void strbuf_adds(struct strbuf *sb, const char *s);
void strbuf_addc(struct strbuf *sb, char c);
void strbuf_addf(struct strbuf *sb, const char *fmt, ...) ODS_PRINTF(2, 3);
void strbuf_vaddf(struct strbuf *sb, const char *fmt, va_list ap);
/* Hands the buffer to the caller (who frees it) and leaves sb empty. */
char *strbuf_detach(struct strbuf *sb);

/* Reads a whole file into a NUL-terminated buffer the caller frees. */
char *util_read_file(const char *path, size_t *len_out, char *err, size_t errlen) ODS_MUST_CHECK;

/* True when s ends with suffix. */
bool util_ends_with(const char *s, const char *suffix);

#endif
