// SPDX-License-Identifier: GPL-2.0
/*
 * retis_bpf: a thin N-API binding over the system libbpf (>= 1.0, Debian 12 ships 1.1.2).
 *
 * Control plane: one JS function per libbpf call we need (open/load/attach/maps). Handles are
 * type-tagged externals; programs and maps are addressed by name inside their object. Every libbpf
 * return is checked; failures throw an Error carrying `op`, `errno` and `libbpfLog` (what libbpf
 * printed during the call, including the verifier log), which bpf/errors.ts turns into a message a
 * user can act on.
 *
 * Data plane: ringbufOpen() starts a native thread that waits on the ring buffers, copies records
 * into large batches and hands each batch to JS as one external ArrayBuffer through a
 * threadsafe function (one JS call per batch, never per record). The call blocks when the JS queue
 * is full: that backpressure makes the BPF side fail reservations, which it counts per probe/CPU.
 *
 * Batch format, records back to back, each 8-byte aligned:
 *     u32 size | u32 ring index | payload[size] | pad to 8
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <linux/netlink.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <node_api.h>

#include "decoder.h"

//// ERRORS & LIBBPF LOG ////

/* Everything libbpf prints during one binding call, so errors can carry it (verifier log incl.).
 * libbpf calls the print callback from whichever thread runs it. Per thread: objects load in
 * parallel on worker threads (objectLoadAsync), each with its own log; the mutex stays for
 * the echo to stderr. */
#define LOG_CAP (256 * 1024)
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread char log_buf[LOG_CAP];
static __thread size_t log_len;
static bool log_debug; /* RETIS_BPF_DEBUG=1: keep LIBBPF_DEBUG lines too */
static bool log_echo;  /* RETIS_BPF_DEBUG=2: also echo to stderr */

/* libbpf prints the whole verifier log as ONE message (BEGIN marker, log, END marker), often far
 * longer than any fixed line buffer, and the error is at its end. A long message keeps its first
 * line (the BEGIN marker, which errors.ts looks for) and its last MSG_TAIL bytes, from a line start. */
#define MSG_TAIL (64 * 1024)

static void log_append(const char *s, size_t n)
{
	/* log_mu held. n <= LOG_CAP / 4 (callers cut longer messages). */
	if (log_len + n >= LOG_CAP) {
		/* Keep the newest half: the end of a verifier log is where the error is. */
		size_t keep = LOG_CAP / 2;
		if (keep > log_len)
			keep = log_len;
		memmove(log_buf, log_buf + log_len - keep, keep);
		log_len = keep;
	}
	memcpy(log_buf + log_len, s, n);
	log_len += n;
	log_buf[log_len] = 0;
}

static int libbpf_print_cb(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[4096];
	char *msg = line, *big = NULL;
	va_list aq;
	int n;

	if (level == LIBBPF_DEBUG && !log_debug)
		return 0;
	va_copy(aq, ap);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n >= 0 && (size_t)n >= sizeof(line)) {
		/* Longer than the line buffer (a verifier log): format it whole. */
		big = malloc((size_t)n + 1);
		if (big && vsnprintf(big, (size_t)n + 1, fmt, aq) >= 0)
			msg = big;
		else
			n = sizeof(line) - 1; /* out of memory: the truncated head is better than nothing */
	}
	va_end(aq);
	if (n < 0) {
		free(big);
		return 0;
	}
	if (log_echo)
		fputs(msg, stderr);
	pthread_mutex_lock(&log_mu);
	if ((size_t)n <= MSG_TAIL) {
		log_append(msg, (size_t)n);
	} else {
		/* First line (at most 512 bytes), a cut marker, then the tail from a line start. */
		const char *nl = memchr(msg, '\n', 512);
		size_t head = nl ? (size_t)(nl - msg) + 1 : 0;
		const char *tail = msg + n - MSG_TAIL;
		const char *tnl = memchr(tail, '\n', MSG_TAIL);
		char mark[96];
		int mn;

		if (tnl && tnl + 1 < msg + n)
			tail = tnl + 1;
		mn = snprintf(mark, sizeof(mark), "... [%zu bytes cut by retis_bpf] ...\n",
			      (size_t)(tail - (msg + head)));
		log_append(msg, head);
		if (mn > 0)
			log_append(mark, (size_t)mn);
		log_append(tail, (size_t)(msg + n - tail));
	}
	pthread_mutex_unlock(&log_mu);
	free(big);
	return n;
}

static void log_reset(void)
{
	pthread_mutex_lock(&log_mu);
	log_len = 0;
	log_buf[0] = 0;
	pthread_mutex_unlock(&log_mu);
}

static const char *errno_name(int e)
{
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
	const char *n = strerrorname_np(e);
	if (n)
		return n;
#endif
	switch (e) {
	case 524: return "ENOTSUPP"; /* kernel-internal, leaks out of bpf() */
	default: return "E?";
	}
}

/* "<op> <detail>: <strerror> (<ENAME>)" into msg. err > 0. */
static void errno_message(char *msg, size_t size, const char *op, int err, const char *detail)
{
	snprintf(msg, size, "%s%s%s: %s (%s)", op, detail ? " " : "", detail ? detail : "",
		 err == 524 ? "Operation not supported by this kernel" : strerror(err), errno_name(err));
}

/* Error("<op>: <strerror> (<ENAME>)") with .op, .errno, .code, .libbpfLog (`log`, loglen bytes).
 * NULL when even that failed. */
static napi_value errno_error(napi_env env, const char *op, int err, const char *detail, const char *log, size_t loglen)
{
	char msg[1024];
	napi_value jmsg, jerr, v;

	if (err < 0)
		err = -err;
	errno_message(msg, sizeof(msg), op, err, detail);
	if (napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &jmsg) != napi_ok ||
	    napi_create_error(env, NULL, jmsg, &jerr) != napi_ok)
		return NULL;
	if (napi_create_string_utf8(env, op, NAPI_AUTO_LENGTH, &v) == napi_ok)
		napi_set_named_property(env, jerr, "op", v);
	if (napi_create_int32(env, err, &v) == napi_ok)
		napi_set_named_property(env, jerr, "errno", v);
	if (napi_create_string_utf8(env, errno_name(err), NAPI_AUTO_LENGTH, &v) == napi_ok)
		napi_set_named_property(env, jerr, "code", v);
	if (napi_create_string_utf8(env, log, loglen, &v) == napi_ok)
		napi_set_named_property(env, jerr, "libbpfLog", v);
	return jerr;
}

/* Throw errno_error() with this thread's libbpf log. err > 0. */
static napi_value throw_errno(napi_env env, const char *op, int err, const char *detail)
{
	napi_value jerr;
	bool pending = false;

	if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
		return NULL;
	pthread_mutex_lock(&log_mu);
	jerr = errno_error(env, op, err, detail, log_buf, log_len);
	pthread_mutex_unlock(&log_mu);
	if (!jerr) {
		char msg[1024];
		errno_message(msg, sizeof(msg), op, err < 0 ? -err : err, detail);
		napi_throw_error(env, NULL, msg);
		return NULL;
	}
	napi_throw(env, jerr);
	return NULL;
}

static napi_value throw_type(napi_env env, const char *msg)
{
	napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
	return NULL;
}

/* N-API calls themselves only fail on programming errors; still never ignore them. */
#define NAPI_CALL(env, call)                                                                        \
	do {                                                                                        \
		napi_status __s = (call);                                                           \
		if (__s != napi_ok) {                                                               \
			const napi_extended_error_info *__i = NULL;                                 \
			bool __p = false;                                                           \
			napi_get_last_error_info((env), &__i);                                      \
			napi_is_exception_pending((env), &__p);                                     \
			if (!__p)                                                                   \
				napi_throw_error((env), NULL,                                       \
						 __i && __i->error_message ? __i->error_message     \
									   : "N-API call failed: " #call); \
			return NULL;                                                                \
		}                                                                                   \
	} while (0)

//// ARGUMENT HELPERS ////

#define MAX_ARGS 10
#define GET_ARGS(n)                                                                                \
	size_t argc = (n);                                                                         \
	napi_value argv[MAX_ARGS];                                                                 \
	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                     \
	if (argc < (n))                                                                            \
		return throw_type(env, "missing arguments");

/* Returns malloc'd string or NULL (exception thrown). */
static char *get_string(napi_env env, napi_value v, const char *what)
{
	size_t len = 0;
	char *s;
	napi_valuetype t;

	if (napi_typeof(env, v, &t) != napi_ok || t != napi_string) {
		char m[128];
		snprintf(m, sizeof(m), "%s must be a string", what);
		throw_type(env, m);
		return NULL;
	}
	if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
		return NULL;
	s = malloc(len + 1);
	if (!s) {
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) {
		free(s);
		return NULL;
	}
	return s;
}

/* Optional string: undefined/null -> *out = NULL, returns true; false on error (thrown). */
static bool get_opt_string(napi_env env, napi_value v, const char *what, char **out)
{
	napi_valuetype t;

	*out = NULL;
	if (napi_typeof(env, v, &t) != napi_ok)
		return false;
	if (t == napi_undefined || t == napi_null)
		return true;
	*out = get_string(env, v, what);
	return *out != NULL;
}

static bool get_i64(napi_env env, napi_value v, int64_t *out)
{
	napi_valuetype t;

	if (napi_typeof(env, v, &t) != napi_ok)
		return false;
	if (t == napi_bigint) {
		bool lossless;
		return napi_get_value_bigint_int64(env, v, out, &lossless) == napi_ok;
	}
	if (t != napi_number) {
		throw_type(env, "expected a number or bigint");
		return false;
	}
	return napi_get_value_int64(env, v, out) == napi_ok;
}

static bool get_u64(napi_env env, napi_value v, uint64_t *out)
{
	napi_valuetype t;

	if (napi_typeof(env, v, &t) != napi_ok)
		return false;
	if (t == napi_bigint) {
		bool lossless;
		return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok;
	}
	int64_t i;
	if (!get_i64(env, v, &i))
		return false;
	*out = (uint64_t)i;
	return true;
}

static bool get_bytes(napi_env env, napi_value v, void **data, size_t *len)
{
	bool is_ta = false;
	napi_typedarray_type tt;
	napi_value ab;
	size_t off;

	if (napi_is_typedarray(env, v, &is_ta) != napi_ok)
		return false;
	if (!is_ta) {
		throw_type(env, "expected a Uint8Array");
		return false;
	}
	return napi_get_typedarray_info(env, v, &tt, len, data, &ab, &off) == napi_ok;
}

static napi_value make_u8(napi_env env, const void *src, size_t len)
{
	napi_value ab, ta;
	void *dst = NULL;

	NAPI_CALL(env, napi_create_arraybuffer(env, len, &dst, &ab));
	if (len)
		memcpy(dst, src, len);
	NAPI_CALL(env, napi_create_typedarray(env, napi_uint8_array, len, ab, 0, &ta));
	return ta;
}

static napi_value make_i32(napi_env env, int32_t v)
{
	napi_value r;
	NAPI_CALL(env, napi_create_int32(env, v, &r));
	return r;
}

static napi_value make_str(napi_env env, const char *s)
{
	napi_value r;
	if (!s)
		NAPI_CALL(env, napi_get_null(env, &r));
	else
		NAPI_CALL(env, napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &r));
	return r;
}

static napi_value undefined(napi_env env)
{
	napi_value r;
	NAPI_CALL(env, napi_get_undefined(env, &r));
	return r;
}

static bool set_prop(napi_env env, napi_value obj, const char *k, napi_value v)
{
	return v && napi_set_named_property(env, obj, k, v) == napi_ok;
}

//// HANDLES ////

/* Type tags keep a link handle from being passed where an object is expected (and so on). */
static const napi_type_tag OBJ_TAG = { 0x7265746973627066ULL, 0x6f626a6563740001ULL };
static const napi_type_tag LINK_TAG = { 0x7265746973627066ULL, 0x6c696e6b00000002ULL };
static const napi_type_tag READER_TAG = { 0x7265746973627066ULL, 0x7265616465720003ULL };
static const napi_type_tag DECODER_TAG = { 0x7265746973627066ULL, 0x6465636f64650004ULL };

struct obj_h {
	struct bpf_object *obj; /* NULL once closed */
};

struct link_h {
	struct bpf_link *link; /* NULL once destroyed */
};

static void patches_forget_obj(struct bpf_object *obj); /* filters.inc.c */

static void obj_finalize(napi_env env, void *data, void *hint)
{
	struct obj_h *h = data;
	(void)env;
	(void)hint;
	/* Safety net only: BpfObject.close() is the normal path (and runs on exit/signals). */
	if (h->obj) {
		patches_forget_obj(h->obj);
		bpf_object__close(h->obj);
	}
	free(h);
}

static void link_finalize(napi_env env, void *data, void *hint)
{
	struct link_h *h = data;
	(void)env;
	(void)hint;
	if (h->link)
		bpf_link__destroy(h->link);
	free(h);
}

static void *unwrap(napi_env env, napi_value v, const napi_type_tag *tag, const char *what)
{
	bool ok = false;
	void *p = NULL;
	napi_valuetype t;

	if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
	    napi_check_object_type_tag(env, v, tag, &ok) != napi_ok || !ok ||
	    napi_get_value_external(env, v, &p) != napi_ok) {
		char m[128];
		snprintf(m, sizeof(m), "expected a %s handle", what);
		throw_type(env, m);
		return NULL;
	}
	return p;
}

static struct bpf_object *get_obj(napi_env env, napi_value v)
{
	struct obj_h *h = unwrap(env, v, &OBJ_TAG, "BPF object");
	if (!h)
		return NULL;
	if (!h->obj) {
		napi_throw_error(env, "ERR_BPF_CLOSED", "BPF object is closed");
		return NULL;
	}
	return h->obj;
}

static struct bpf_program *get_prog(napi_env env, struct bpf_object *obj, napi_value name_v)
{
	char *name = get_string(env, name_v, "program name");
	struct bpf_program *p;

	if (!name)
		return NULL;
	p = bpf_object__find_program_by_name(obj, name);
	if (!p) {
		char m[300];
		snprintf(m, sizeof(m), "no program named '%s' in object '%s'", name, bpf_object__name(obj));
		napi_throw_error(env, "ERR_BPF_NO_PROGRAM", m);
	}
	free(name);
	return p;
}

static struct bpf_map *get_map(napi_env env, struct bpf_object *obj, napi_value name_v)
{
	char *name = get_string(env, name_v, "map name");
	struct bpf_map *m;

	if (!name)
		return NULL;
	m = bpf_object__find_map_by_name(obj, name);
	if (!m) {
		char msg[300];
		snprintf(msg, sizeof(msg), "no map named '%s' in object '%s'", name, bpf_object__name(obj));
		napi_throw_error(env, "ERR_BPF_NO_MAP", msg);
	}
	free(name);
	return m;
}

static napi_value wrap_link(napi_env env, struct bpf_link *link)
{
	struct link_h *h = calloc(1, sizeof(*h));
	napi_value ext;

	if (!h) {
		bpf_link__destroy(link);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	h->link = link;
	if (napi_create_external(env, h, link_finalize, NULL, &ext) != napi_ok) {
		bpf_link__destroy(link);
		free(h);
		napi_throw_error(env, NULL, "napi_create_external failed");
		return NULL;
	}
	NAPI_CALL(env, napi_type_tag_object(env, ext, &LINK_TAG));
	return ext;
}

//// OBJECT LIFECYCLE ////

/* objectOpen(path, { name?, btfCustomPath? }) -> handle */
static napi_value object_open(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	char *path = NULL, *name = NULL, *btf_path = NULL;
	napi_value v, ext = NULL;
	struct bpf_object *obj;
	struct obj_h *h;

	path = get_string(env, argv[0], "path");
	if (!path)
		return NULL;
	if (napi_get_named_property(env, argv[1], "name", &v) != napi_ok || !get_opt_string(env, v, "name", &name))
		goto out;
	if (napi_get_named_property(env, argv[1], "btfCustomPath", &v) != napi_ok ||
	    !get_opt_string(env, v, "btfCustomPath", &btf_path))
		goto out;

	LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name, .btf_custom_path = btf_path);
	log_reset();
	obj = bpf_object__open_file(path, &opts);
	if (!obj) {
		throw_errno(env, "bpf_object__open_file", errno, path);
		goto out;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		bpf_object__close(obj);
		napi_throw_error(env, NULL, "out of memory");
		goto out;
	}
	h->obj = obj;
	if (napi_create_external(env, h, obj_finalize, NULL, &ext) != napi_ok ||
	    napi_type_tag_object(env, ext, &OBJ_TAG) != napi_ok) {
		ext = NULL;
		napi_throw_error(env, NULL, "napi_create_external failed");
	}
out:
	free(path);
	free(name);
	free(btf_path);
	return ext;
}

static napi_value object_close(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct obj_h *h = unwrap(env, argv[0], &OBJ_TAG, "BPF object");

	if (!h)
		return NULL;
	if (h->obj) {
		patches_forget_obj(h->obj);
		bpf_object__close(h->obj);
		h->obj = NULL;
	}
	return undefined(env);
}

static napi_value object_load(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct bpf_object *obj = get_obj(env, argv[0]);
	int err;

	if (!obj)
		return NULL;
	log_reset();
	err = bpf_object__load(obj);
	if (err)
		return throw_errno(env, "bpf_object__load", err, bpf_object__name(obj));
	return undefined(env);
}

/* objectLoadAsync(h) -> Promise<void>: bpf_object__load() on a worker thread, so several objects
 * verify in parallel (the verifier is most of a capture's start time). The object must not be
 * used until the promise settles (the TS side holds it busy). */
struct load_work {
	napi_async_work work;
	napi_deferred deferred;
	napi_ref obj_ref; /* keeps the handle (and so the object) alive meanwhile */
	struct bpf_object *obj;
	int err;
	char *log;
	size_t loglen;
};

static void load_execute(napi_env env, void *data)
{
	struct load_work *w = data;
	(void)env;
	log_reset();
	w->err = bpf_object__load(w->obj);
	if (w->err && log_len) {
		w->log = malloc(log_len);
		if (w->log) {
			memcpy(w->log, log_buf, log_len);
			w->loglen = log_len;
		}
	}
}

static void load_complete(napi_env env, napi_status status, void *data)
{
	struct load_work *w = data;
	napi_value v = NULL;

	if (status != napi_ok && !w->err)
		w->err = ECANCELED;
	if (w->err) {
		v = errno_error(env, "bpf_object__load", w->err, bpf_object__name(w->obj), w->log ? w->log : "", w->loglen);
		if (!v)
			(void)napi_create_string_utf8(env, "bpf_object__load failed", NAPI_AUTO_LENGTH, &v);
		(void)napi_reject_deferred(env, w->deferred, v); /* fails only on a bad deferred */
	} else {
		(void)napi_get_undefined(env, &v);
		(void)napi_resolve_deferred(env, w->deferred, v);
	}
	(void)napi_delete_reference(env, w->obj_ref);
	(void)napi_delete_async_work(env, w->work);
	free(w->log);
	free(w);
}

static napi_value object_load_async(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct load_work *w;
	napi_value promise, name;

	if (!obj)
		return NULL;
	w = calloc(1, sizeof(*w));
	if (!w) {
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	w->obj = obj;
	if (napi_create_promise(env, &w->deferred, &promise) != napi_ok ||
	    napi_create_reference(env, argv[0], 1, &w->obj_ref) != napi_ok ||
	    napi_create_string_utf8(env, "retis_bpf.load", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    napi_create_async_work(env, NULL, name, load_execute, load_complete, w, &w->work) != napi_ok ||
	    napi_queue_async_work(env, w->work) != napi_ok) {
		/* Nothing queued: settle what exists and fail synchronously. */
		if (w->work)
			(void)napi_delete_async_work(env, w->work);
		if (w->obj_ref)
			(void)napi_delete_reference(env, w->obj_ref);
		if (w->deferred) {
			napi_value e;
			if (napi_create_string_utf8(env, "objectLoadAsync: could not queue the load", NAPI_AUTO_LENGTH, &e) == napi_ok)
				(void)napi_reject_deferred(env, w->deferred, e);
		}
		free(w);
		napi_throw_error(env, NULL, "objectLoadAsync: could not queue the load");
		return NULL;
	}
	return promise;
}

/* mallocTrim() -> whether memory went back to the system. Parallel loads parse the kernel BTF
 * in libbpf on worker threads, each into its own malloc arena; freed, that memory stays mapped
 * (tens of MiB) unless trimmed. */
static napi_value malloc_trim_fn(napi_env env, napi_callback_info info)
{
	napi_value r;
	(void)info;
	NAPI_CALL(env, napi_get_boolean(env, malloc_trim(0) == 1, &r));
	return r;
}

/* objectPrograms(h) -> [{ name, section, type, expectedAttachType, autoload, fd }] */
static napi_value object_programs(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	napi_value arr, o;
	uint32_t i = 0;

	if (!obj)
		return NULL;
	NAPI_CALL(env, napi_create_array(env, &arr));
	bpf_object__for_each_program(p, obj) {
		NAPI_CALL(env, napi_create_object(env, &o));
		if (!set_prop(env, o, "name", make_str(env, bpf_program__name(p))) ||
		    !set_prop(env, o, "section", make_str(env, bpf_program__section_name(p))) ||
		    !set_prop(env, o, "type", make_i32(env, bpf_program__type(p))) ||
		    !set_prop(env, o, "expectedAttachType", make_i32(env, bpf_program__expected_attach_type(p))) ||
		    !set_prop(env, o, "fd", make_i32(env, bpf_program__fd(p))))
			return NULL;
		napi_value b;
		NAPI_CALL(env, napi_get_boolean(env, bpf_program__autoload(p), &b));
		NAPI_CALL(env, napi_set_named_property(env, o, "autoload", b));
		NAPI_CALL(env, napi_set_element(env, arr, i++, o));
	}
	return arr;
}

/* objectMaps(h) -> [{ name, type, keySize, valueSize, maxEntries, fd }] */
static napi_value object_maps(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_map *m;
	napi_value arr, o;
	uint32_t i = 0;

	if (!obj)
		return NULL;
	NAPI_CALL(env, napi_create_array(env, &arr));
	bpf_object__for_each_map(m, obj) {
		NAPI_CALL(env, napi_create_object(env, &o));
		if (!set_prop(env, o, "name", make_str(env, bpf_map__name(m))) ||
		    !set_prop(env, o, "type", make_i32(env, bpf_map__type(m))) ||
		    !set_prop(env, o, "keySize", make_i32(env, (int32_t)bpf_map__key_size(m))) ||
		    !set_prop(env, o, "valueSize", make_i32(env, (int32_t)bpf_map__value_size(m))) ||
		    !set_prop(env, o, "maxEntries", make_i32(env, (int32_t)bpf_map__max_entries(m))) ||
		    !set_prop(env, o, "fd", make_i32(env, bpf_map__fd(m))))
			return NULL;
		NAPI_CALL(env, napi_set_element(env, arr, i++, o));
	}
	return arr;
}

/* objectBtf(h) -> Uint8Array (copy of the object's raw BTF) | null */
static napi_value object_btf(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct btf *btf;
	const void *raw;
	__u32 size = 0;
	napi_value r;

	if (!obj)
		return NULL;
	btf = bpf_object__btf(obj);
	if (!btf) {
		NAPI_CALL(env, napi_get_null(env, &r));
		return r;
	}
	raw = btf__raw_data(btf, &size);
	if (!raw)
		return throw_errno(env, "btf__raw_data", errno ? errno : ENOMEM, NULL);
	return make_u8(env, raw, size);
}

static napi_value program_set_autoload(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	bool on;
	int err;

	if (!obj || !(p = get_prog(env, obj, argv[1])))
		return NULL;
	NAPI_CALL(env, napi_get_value_bool(env, argv[2], &on));
	err = bpf_program__set_autoload(p, on);
	if (err)
		return throw_errno(env, "bpf_program__set_autoload", err, bpf_program__name(p));
	return undefined(env);
}

static napi_value program_set_attach_target(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	char *target;
	int err;

	if (!obj || !(p = get_prog(env, obj, argv[1])))
		return NULL;
	target = get_string(env, argv[2], "attach target");
	if (!target)
		return NULL;
	log_reset();
	err = bpf_program__set_attach_target(p, 0, target);
	free(target);
	if (err)
		return throw_errno(env, "bpf_program__set_attach_target", err, bpf_program__name(p));
	return undefined(env);
}

static napi_value program_fd(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;

	if (!obj || !(p = get_prog(env, obj, argv[1])))
		return NULL;
	return make_i32(env, bpf_program__fd(p));
}

static napi_value map_fd(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_map *m;

	if (!obj || !(m = get_map(env, obj, argv[1])))
		return NULL;
	return make_i32(env, bpf_map__fd(m));
}

static napi_value map_set_max_entries(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_map *m;
	uint32_t n;
	int err;

	if (!obj || !(m = get_map(env, obj, argv[1])))
		return NULL;
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &n));
	err = bpf_map__set_max_entries(m, n);
	if (err)
		return throw_errno(env, "bpf_map__set_max_entries", err, bpf_map__name(m));
	return undefined(env);
}

static napi_value map_reuse_fd(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_map *m;
	int32_t fd;
	int err;

	if (!obj || !(m = get_map(env, obj, argv[1])))
		return NULL;
	NAPI_CALL(env, napi_get_value_int32(env, argv[2], &fd));
	log_reset();
	err = bpf_map__reuse_fd(m, fd);
	if (err)
		return throw_errno(env, "bpf_map__reuse_fd", err, bpf_map__name(m));
	return undefined(env);
}

static napi_value map_set_initial_value(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_map *m;
	void *data;
	size_t len;
	int err;

	if (!obj || !(m = get_map(env, obj, argv[1])) || !get_bytes(env, argv[2], &data, &len))
		return NULL;
	err = bpf_map__set_initial_value(m, data, len);
	if (err)
		return throw_errno(env, "bpf_map__set_initial_value", err, bpf_map__name(m));
	return undefined(env);
}

static napi_value map_initial_value(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_map *m;
	const void *p;
	size_t size = 0;

	if (!obj || !(m = get_map(env, obj, argv[1])))
		return NULL;
	p = bpf_map__initial_value(m, &size);
	if (!p) {
		napi_value n;
		NAPI_CALL(env, napi_get_null(env, &n));
		return n;
	}
	return make_u8(env, p, size);
}

//// ATTACH ////

static napi_value attach_result(napi_env env, struct bpf_link *link, const char *op, const char *what)
{
	if (!link)
		return throw_errno(env, op, errno ? errno : EINVAL, what);
	return wrap_link(env, link);
}

/* attachTracepoint(h, prog, group, name, cookie) */
static napi_value attach_tracepoint(napi_env env, napi_callback_info info)
{
	GET_ARGS(5);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	char *grp = NULL, *name = NULL, what[512];
	uint64_t cookie = 0;
	struct bpf_link *link;

	if (!obj || !(p = get_prog(env, obj, argv[1])) || !(grp = get_string(env, argv[2], "group")))
		return NULL;
	if (!(name = get_string(env, argv[3], "name")) || !get_u64(env, argv[4], &cookie)) {
		free(grp);
		free(name);
		return NULL;
	}
	LIBBPF_OPTS(bpf_tracepoint_opts, opts, .bpf_cookie = cookie);
	snprintf(what, sizeof(what), "%s:%s", grp, name);
	log_reset();
	errno = 0;
	link = bpf_program__attach_tracepoint_opts(p, grp, name, &opts);
	free(grp);
	free(name);
	return attach_result(env, link, "bpf_program__attach_tracepoint", what);
}

/* attachRawTracepoint(h, prog, name) */
static napi_value attach_raw_tracepoint(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	char *name;
	struct bpf_link *link;
	napi_value r;

	if (!obj || !(p = get_prog(env, obj, argv[1])) || !(name = get_string(env, argv[2], "name")))
		return NULL;
	log_reset();
	errno = 0;
	link = bpf_program__attach_raw_tracepoint(p, name);
	r = attach_result(env, link, "bpf_program__attach_raw_tracepoint", name);
	free(name);
	return r;
}

/* attachTrace(h, prog): tp_btf, fentry, fexit (target fixed at load). */
static napi_value attach_trace(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;

	if (!obj || !(p = get_prog(env, obj, argv[1])))
		return NULL;
	log_reset();
	errno = 0;
	return attach_result(env, bpf_program__attach_trace(p), "bpf_program__attach_trace", bpf_program__name(p));
}

/* attachKprobe(h, prog, fn, retprobe, cookie) */
static napi_value attach_kprobe(napi_env env, napi_callback_info info)
{
	GET_ARGS(5);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	char *fn;
	bool ret;
	uint64_t cookie;
	struct bpf_link *link;
	napi_value r;

	if (!obj || !(p = get_prog(env, obj, argv[1])) || !(fn = get_string(env, argv[2], "function")))
		return NULL;
	if (napi_get_value_bool(env, argv[3], &ret) != napi_ok || !get_u64(env, argv[4], &cookie)) {
		free(fn);
		return throw_type(env, "retprobe must be a boolean, cookie a bigint");
	}
	LIBBPF_OPTS(bpf_kprobe_opts, opts, .bpf_cookie = cookie, .retprobe = ret);
	log_reset();
	errno = 0;
	link = bpf_program__attach_kprobe_opts(p, fn, &opts);
	r = attach_result(env, link, ret ? "bpf_program__attach_kretprobe" : "bpf_program__attach_kprobe", fn);
	free(fn);
	return r;
}

/* attachUprobe(h, prog, retprobe, pid, binary, func|null, offset, cookie) */
static napi_value attach_uprobe(napi_env env, napi_callback_info info)
{
	GET_ARGS(8);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	char *bin = NULL, *fn = NULL, what[512];
	bool ret;
	int32_t pid;
	int64_t off;
	uint64_t cookie;
	struct bpf_link *link;

	if (!obj || !(p = get_prog(env, obj, argv[1])))
		return NULL;
	if (napi_get_value_bool(env, argv[2], &ret) != napi_ok || napi_get_value_int32(env, argv[3], &pid) != napi_ok)
		return throw_type(env, "retprobe must be a boolean, pid a number");
	if (!(bin = get_string(env, argv[4], "binary")))
		return NULL;
	if (!get_opt_string(env, argv[5], "function", &fn) || !get_i64(env, argv[6], &off) || !get_u64(env, argv[7], &cookie)) {
		free(bin);
		free(fn);
		return NULL;
	}
	LIBBPF_OPTS(bpf_uprobe_opts, opts, .bpf_cookie = cookie, .retprobe = ret, .func_name = fn);
	snprintf(what, sizeof(what), "%s:%s", bin, fn ? fn : "(offset)");
	log_reset();
	errno = 0;
	link = bpf_program__attach_uprobe_opts(p, pid, bin, (size_t)off, &opts);
	free(bin);
	free(fn);
	return attach_result(env, link, ret ? "bpf_program__attach_uretprobe" : "bpf_program__attach_uprobe", what);
}

/* attachUsdt(h, prog, pid, binary, provider, name, cookie) */
static napi_value attach_usdt(napi_env env, napi_callback_info info)
{
	GET_ARGS(7);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *p;
	char *bin = NULL, *prov = NULL, *name = NULL, what[768];
	int32_t pid;
	uint64_t cookie = 0;
	struct bpf_link *link = NULL;
	napi_value r = NULL;

	if (!obj || !(p = get_prog(env, obj, argv[1])))
		return NULL;
	if (napi_get_value_int32(env, argv[2], &pid) != napi_ok)
		return throw_type(env, "pid must be a number");
	if (!(bin = get_string(env, argv[3], "binary")) || !(prov = get_string(env, argv[4], "provider")) ||
	    !(name = get_string(env, argv[5], "name")) || !get_u64(env, argv[6], &cookie))
		goto out;
	LIBBPF_OPTS(bpf_usdt_opts, opts, .usdt_cookie = cookie);
	snprintf(what, sizeof(what), "%s:%s:%s", bin, prov, name);
	log_reset();
	errno = 0;
	link = bpf_program__attach_usdt(p, pid, bin, prov, name, &opts);
	r = attach_result(env, link, "bpf_program__attach_usdt", what);
out:
	free(bin);
	free(prov);
	free(name);
	return r;
}

static napi_value link_destroy(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct link_h *h = unwrap(env, argv[0], &LINK_TAG, "BPF link");
	int err;

	if (!h)
		return NULL;
	if (h->link) {
		err = bpf_link__destroy(h->link);
		h->link = NULL;
		if (err)
			return throw_errno(env, "bpf_link__destroy", err, NULL);
	}
	return undefined(env);
}

//// MAPS (by fd) ////

/* mapLookup(fd, key, valueSize) -> Uint8Array | null (no such key) */
static napi_value map_lookup(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	int32_t fd;
	uint32_t vsize;
	void *key, *val;
	size_t klen;
	napi_value r;

	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
	if (!get_bytes(env, argv[1], &key, &klen))
		return NULL;
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &vsize));
	val = calloc(1, vsize ? vsize : 1);
	if (!val) {
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	if (bpf_map_lookup_elem(fd, key, val)) {
		int e = errno;
		free(val);
		if (e == ENOENT) {
			NAPI_CALL(env, napi_get_null(env, &r));
			return r;
		}
		return throw_errno(env, "bpf_map_lookup_elem", e, NULL);
	}
	r = make_u8(env, val, vsize);
	free(val);
	return r;
}

/* mapUpdate(fd, key, value, flags) */
static napi_value map_update(napi_env env, napi_callback_info info)
{
	GET_ARGS(4);
	int32_t fd;
	int64_t flags;
	void *key, *val;
	size_t klen, vlen;

	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
	if (!get_bytes(env, argv[1], &key, &klen) || !get_bytes(env, argv[2], &val, &vlen) || !get_i64(env, argv[3], &flags))
		return NULL;
	if (bpf_map_update_elem(fd, key, val, (__u64)flags))
		return throw_errno(env, "bpf_map_update_elem", errno, NULL);
	return undefined(env);
}

static napi_value map_delete(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	int32_t fd;
	void *key;
	size_t klen;

	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &fd));
	if (!get_bytes(env, argv[1], &key, &klen))
		return NULL;
	if (bpf_map_delete_elem(fd, key) && errno != ENOENT)
		return throw_errno(env, "bpf_map_delete_elem", errno, NULL);
	return undefined(env);
}

//// FEATURE PROBES ////

static napi_value num_possible_cpus(napi_env env, napi_callback_info info)
{
	(void)info;
	int n = libbpf_num_possible_cpus();
	if (n < 0)
		return throw_errno(env, "libbpf_num_possible_cpus", n, NULL);
	return make_i32(env, n);
}

/* probeProgType(type) -> 1 | 0 | -errno */
static napi_value probe_prog_type(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	int32_t t;
	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &t));
	log_reset();
	return make_i32(env, libbpf_probe_bpf_prog_type((enum bpf_prog_type)t, NULL));
}

static napi_value probe_map_type(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	int32_t t;
	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &t));
	log_reset();
	return make_i32(env, libbpf_probe_bpf_map_type((enum bpf_map_type)t, NULL));
}

static napi_value probe_helper(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	int32_t t, h;
	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &t));
	NAPI_CALL(env, napi_get_value_int32(env, argv[1], &h));
	log_reset();
	return make_i32(env, libbpf_probe_bpf_helper((enum bpf_prog_type)t, (enum bpf_func_id)h, NULL));
}

/*
 * probeProgLoad(progType, expectedAttachType, attachBtfId[, insns]) -> { errno, log }
 * Loads the smallest valid program ("r0 = 0; exit"), or `insns` (raw struct bpf_insn bytes) when
 * given, and closes it: tells whether this kernel lets us load that program type with that
 * attach point (fentry is EPERM on some sandboxes even as root, while tp_btf of the same prog
 * type works), or whether its verifier accepts a construct (bpf/features.ts).
 */
static napi_value probe_prog_load(napi_env env, napi_callback_info info)
{
	size_t argc = 4;
	napi_value argv[4];
	int32_t type, attach;
	uint32_t btf_id;
	char log[8192] = "";
	static const struct bpf_insn ret0[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	const struct bpf_insn *insns = ret0;
	size_t ninsns = 2;
	napi_value o;
	napi_valuetype t = napi_undefined;
	int fd, err = 0;

	NAPI_CALL(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
	if (argc < 3)
		return throw_type(env, "missing arguments");
	NAPI_CALL(env, napi_get_value_int32(env, argv[0], &type));
	NAPI_CALL(env, napi_get_value_int32(env, argv[1], &attach));
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &btf_id));
	if (argc > 3)
		NAPI_CALL(env, napi_typeof(env, argv[3], &t));
	if (t != napi_undefined) {
		void *data;
		size_t len;

		if (!get_bytes(env, argv[3], &data, &len))
			return NULL;
		if (len == 0 || len % sizeof(struct bpf_insn))
			return throw_type(env, "insns: expected a Uint8Array of whole struct bpf_insn (8 bytes each)");
		insns = data;
		ninsns = len / sizeof(struct bpf_insn);
	}
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = (enum bpf_attach_type)attach,
		    .attach_btf_id = btf_id, .log_buf = log, .log_size = sizeof(log), .log_level = 1);
	fd = bpf_prog_load((enum bpf_prog_type)type, "retis_probe", "GPL", insns, ninsns, &opts);
	if (fd < 0)
		err = errno;
	else
		(void)close(fd); /* only a probe: the program is dropped with its last fd */
	NAPI_CALL(env, napi_create_object(env, &o));
	if (!set_prop(env, o, "errno", make_i32(env, err)) || !set_prop(env, o, "log", make_str(env, log)))
		return NULL;
	return o;
}

static napi_value version(napi_env env, napi_callback_info info)
{
	(void)info;
	char v[64];
	snprintf(v, sizeof(v), "%u.%u", libbpf_major_version(), libbpf_minor_version());
	return make_str(env, v);
}

//// RING BUFFER READER ////

/* Batch buffers are recycled through a small process-wide pool: at millions of records/s a fresh
 * malloc per batch means a fresh mmap and page faults on every batch. The pool is global because a
 * batch handed to JS may be collected after its reader is gone. Its size is capped by what the open
 * readers can have in flight (queue depth + 2 each: the batch being filled, the queued ones and the
 * one in the JS callback); extras are freed. */
#define POOL_MAX 128
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
	void *p;
	size_t cap;
} pool[POOL_MAX];
static int pool_n;
static int pool_limit; /* sum of the open readers' shares, at most POOL_MAX */
static int pool_shares;

static atomic_uint_fast64_t pool_misses; /* batch buffers that had to be malloc'd */

static void *pool_take(size_t cap, atomic_uint_fast64_t *misses)
{
	void *p = NULL;

	pthread_mutex_lock(&pool_mu);
	for (int i = pool_n - 1; i >= 0; i--) {
		if (pool[i].cap == cap) {
			p = pool[i].p;
			pool[i] = pool[--pool_n];
			break;
		}
	}
	pthread_mutex_unlock(&pool_mu);
	if (!p) {
		atomic_fetch_add_explicit(&pool_misses, 1, memory_order_relaxed);
		if (misses)
			atomic_fetch_add_explicit(misses, 1, memory_order_relaxed);
	}
	return p ? p : malloc(cap);
}

static void pool_give(void *p, size_t cap)
{
	if (!p)
		return;
	void *evict = NULL;

	pthread_mutex_lock(&pool_mu);
	if (pool_n >= pool_limit) {
		if (pool_n == 0) {
			/* No reader open: nobody will ask for it. */
			evict = p;
			p = NULL;
		} else {
			/* Full (e.g. of odd-sized buffers nobody asks for): drop the oldest. */
			evict = pool[0].p;
			memmove(&pool[0], &pool[1], sizeof(pool[0]) * (size_t)(pool_n - 1));
			pool_n--;
		}
	}
	if (p) {
		pool[pool_n].p = p;
		pool[pool_n].cap = cap;
		pool_n++;
	}
	pthread_mutex_unlock(&pool_mu);
	free(evict);
}

/* A reader opens (share > 0) or closes (share < 0): resize the cap, free what no longer fits. */
static void pool_adjust(int share)
{
	void *extra[POOL_MAX];
	int nextra = 0;

	pthread_mutex_lock(&pool_mu);
	pool_shares += share;
	pool_limit = pool_shares < 0 ? 0 : pool_shares > POOL_MAX ? POOL_MAX : pool_shares;
	while (pool_n > pool_limit)
		extra[nextra++] = pool[--pool_n].p;
	pthread_mutex_unlock(&pool_mu);
	for (int i = 0; i < nextra; i++)
		free(extra[i]);
}

struct batch_msg {
	uint8_t *buf;
	size_t cap, len;
	uint32_t count;
	uint32_t flush_seq; /* non-zero: this batch completes the flush with that sequence number */
	int32_t err;        /* non-zero: the reader thread stopped on this errno */
	bool keep;          /* JS may keep the batch: do not detach it after the callback */
	/* Once handed to JS as an external ArrayBuffer, the message is shared by reader_call_js and
	 * the buffer's finalizer (refs = 2: the last one frees it), and the buffer goes back to the
	 * pool exactly once: whoever flips buf_given first (after a successful detach, or finalize). */
	atomic_int refs;
	atomic_bool buf_given;
};

static void batch_msg_unref(struct batch_msg *m)
{
	if (atomic_fetch_sub(&m->refs, 1) == 1)
		free(m);
}

static void batch_msg_give_buf(struct batch_msg *m)
{
	if (!atomic_exchange(&m->buf_given, true))
		pool_give(m->buf, m->cap);
}

struct reader;
struct ring_ctx {
	struct reader *r;
	uint32_t idx;
	/* Our own view of the ring (see ring_consume): the same pages libbpf maps. */
	unsigned long *consumer_pos; /* read-write page */
	unsigned long *producer_pos; /* read-only page, data follows (mapped once, see ring_map) */
	uint8_t *data;
	unsigned long mask;
	size_t page, size;
	/* A record that wraps past the end of the data area is copied here whole. */
	uint8_t *wrap_buf;
	size_t wrap_cap;
};

struct reader {
	struct ring_ctx *ctxs;
	int nrings;
	int nrings_mapped; /* ctxs[0..nrings_mapped) may hold mappings (ring_unmap is idempotent) */
	int epfd, evfd;
	pthread_t thread;
	bool thread_started;
	bool closed;
	napi_threadsafe_function tsfn;
	napi_env env;

	atomic_bool stop;
	atomic_uint flush_req; /* bumped by JS; the thread answers with a batch tagged with it */
	unsigned flush_done;

	/* Current batch (reader thread only). */
	uint8_t *buf;
	size_t cap, len;
	uint32_t count;
	uint64_t payload_bytes; /* payload bytes in the current batch */
	uint64_t batch_start_ns;

	size_t batch_bytes;
	bool keep_batches;
	int pool_share; /* added to the pool cap while open */
	int poll_ms;
	uint64_t flush_ns;

	atomic_uint_fast64_t records, bytes, batches, oversize;
	atomic_uint_fast64_t buffers_allocated; /* batch buffers this reader had to malloc */

	/* Staged producers (capture.bpf.c stage_enter()): each ring record is a batch of frames
	 * { u32 len, u32 probe } + record, and this program (BPF_PROG_TEST_RUN on each CPU) moves
	 * what a CPU still holds to the ring: every stage_ns, and everything on a flush request. */
	int stage_fd; /* -1: plain records */
	uint64_t stage_ns, stage_last_ns;
	int ncpus;

	/* Column mode: records are decoded on this thread into arenas (decoder.h), and batches
	 * are arenas of `count` rows instead of copied records. */
	struct decoder *dec;
	napi_ref dec_ref; /* keeps the decoder alive as long as the thread may use it */
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* Hand the current batch to JS (blocking: backpressure) and start a new one. Returns false when
 * the threadsafe function is closing (reader being closed). */
static bool emit_batch(struct reader *r, uint32_t flush_seq, int32_t err)
{
	struct batch_msg *m = malloc(sizeof(*m));
	napi_status s;

	if (!m)
		return false;
	m->buf = r->buf;
	m->cap = r->cap;
	m->len = r->len;
	m->count = r->count;
	m->flush_seq = flush_seq;
	m->err = err;
	m->keep = r->keep_batches;
	atomic_init(&m->refs, 1);
	atomic_init(&m->buf_given, false);
	/* Stats per batch, not per record: a locked add per record cost ~10 ns at millions/s. */
	atomic_fetch_add_explicit(&r->records, r->count, memory_order_relaxed);
	atomic_fetch_add_explicit(&r->bytes, r->payload_bytes, memory_order_relaxed);
	r->payload_bytes = 0;
	if (r->count == 0) {
		/* Nothing to hand over: keep the buffer, send an empty batch (flush ack/error). */
		m->buf = NULL;
		m->len = 0;
	} else {
		r->buf = NULL;
		r->len = 0;
		r->count = 0;
	}
	s = napi_call_threadsafe_function(r->tsfn, m, napi_tsfn_blocking);
	if (s != napi_ok) {
		pool_give(m->buf, m->cap);
		free(m);
		return false;
	}
	atomic_fetch_add(&r->batches, 1);
	return true;
}

/* Column mode: decode straight from the ring's memory into the current arena. */
static int on_record_columns(struct reader *r, const void *data, size_t size)
{
	struct decoder *d = r->dec;

	for (int attempt = 0; attempt < 2; attempt++) {
		if (!r->buf) {
			r->buf = pool_take(d->arena_bytes, &r->buffers_allocated);
			if (!r->buf)
				return -ENOMEM;
			r->cap = d->arena_bytes;
			r->len = 0;
			r->count = 0;
			dec_arena_init(d, r->buf);
			r->batch_start_ns = now_ns();
		}
		if (dec_record(d, r->buf, data, size > UINT32_MAX ? UINT32_MAX : (uint32_t)size) == DEC_OK) {
			r->count = ((uint32_t *)r->buf)[DEC_H_ROWS];
			r->len = r->count ? r->cap : 0;
			r->payload_bytes += size;
			return 0;
		}
		/* Arena full: hand it over, retry on a fresh one. */
		if (!emit_batch(r, 0, 0))
			return -ECANCELED;
	}
	/* Does not fit an empty arena: the program's sizes make this impossible; counted anyway. */
	dec_inc(&d->malformed);
	return 0;
}

static int on_record(void *ctx, void *data, size_t size)
{
	struct ring_ctx *rc = ctx;
	struct reader *r = rc->r;
	size_t need = 8 + ((size + 7) & ~(size_t)7);

	if (atomic_load_explicit(&r->stop, memory_order_relaxed))
		return -ECANCELED; /* stops rings_consume() */
	if (r->dec)
		return on_record_columns(r, data, size);
	if (r->buf && r->len + need > r->cap) {
		if (!emit_batch(r, 0, 0))
			return -ECANCELED;
	}
	if (!r->buf) {
		size_t cap = r->batch_bytes;
		if (need > cap) {
			/* A record larger than a batch: give it a batch of its own (not pooled). */
			cap = need;
			atomic_fetch_add(&r->oversize, 1);
		}
		r->buf = cap == r->batch_bytes ? pool_take(cap, &r->buffers_allocated) : malloc(cap);
		if (!r->buf)
			return -ENOMEM;
		r->cap = cap;
		r->len = 0;
		r->count = 0;
		r->batch_start_ns = now_ns();
	}
	uint8_t *dst = r->buf + r->len;
	uint32_t hdr[2] = { (uint32_t)size, rc->idx };
	memcpy(dst, hdr, 8);
	memcpy(dst + 8, data, size);
	r->len += need;
	r->count++;
	r->payload_bytes += size;
	return 0;
}

/* Publish the consumer position every this many records, not after each one as libbpf 1.1's
 * ring_buffer__consume() does: the producers read it on every reservation, and a store per record
 * bounced its cache line between the reader and the probes' CPUs (~100 ns each side). The
 * space held back meanwhile is a few dozen records of a multi-MiB ring. */
#define RING_PUBLISH_EVERY 64

/*
 * The record after header `hdr`, contiguous: in place, or, when it runs past the end of the data
 * area, copied whole into the ring's wrap buffer (NULL: out of memory). The header itself never
 * wraps (8-byte aligned in a power-of-two area).
 */
static uint8_t *ring_record(struct ring_ctx *g, uint32_t *hdr, size_t len)
{
	uint8_t *rec = (uint8_t *)hdr + BPF_RINGBUF_HDR_SZ;
	size_t first = g->size - (size_t)(rec - g->data);
	if (len <= first)
		return rec;
	if (g->wrap_cap < len) {
		uint8_t *b = realloc(g->wrap_buf, len);
		if (!b)
			return NULL;
		g->wrap_buf = b;
		g->wrap_cap = len;
	}
	memcpy(g->wrap_buf, rec, first);
	memcpy(g->wrap_buf + first, g->data, len - first);
	return g->wrap_buf;
}

/* A batch of staged records: frames { u32 len, u32 probe } each followed by `len` bytes (8-aligned). */
static int on_frames(struct ring_ctx *g, const uint8_t *p, size_t size)
{
	size_t off = 0;

	while (off + 8 <= size) {
		uint32_t len;
		memcpy(&len, p + off, sizeof(len));
		if (len > size - off - 8)
			break; /* cannot happen: the producer writes whole frames */
		int err = on_record(g, (void *)(p + off + 8), len);
		if (err < 0)
			return err;
		off += 8 + (((size_t)len + 7) & ~(size_t)7);
	}
	return 0;
}

/* Run the staged producers' flush program on `cpu` (`all`: everything, else only batches older
 * than the program's limit). 0 or -errno. */
static int stage_run(int fd, int cpu, bool all)
{
	uint64_t args[1] = { all };
	LIBBPF_OPTS(bpf_test_run_opts, o, .ctx_in = args, .ctx_size_in = sizeof(args), .flags = BPF_F_TEST_RUN_ON_CPU,
		    .cpu = (uint32_t)cpu);

	return bpf_prog_test_run_opts(fd, &o) < 0 ? -errno : 0;
}

/* stage_run() on every CPU. An offline CPU refuses (ENXIO): nothing is staged there. */
static int stage_flush_all(struct reader *r, bool all)
{
	for (int cpu = 0; cpu < r->ncpus; cpu++) {
		int err = stage_run(r->stage_fd, cpu, all);
		if (err < 0 && err != -ENXIO)
			return err;
	}
	r->stage_last_ns = now_ns();
	return 0;
}

static int ring_consume(struct reader *r, struct ring_ctx *g)
{
	unsigned long cons = __atomic_load_n(g->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long prod;
	unsigned since = 0;
	int n = 0;

	while ((prod = __atomic_load_n(g->producer_pos, __ATOMIC_ACQUIRE)) > cons) {
		while (cons < prod) {
			uint32_t *hdr = (uint32_t *)(g->data + (cons & g->mask));
			uint32_t len = __atomic_load_n(hdr, __ATOMIC_ACQUIRE);
			if (len & BPF_RINGBUF_BUSY_BIT)
				goto out; /* reserved, not committed yet: the next drain gets it */
			cons += ((len & ~(uint32_t)(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT)) + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
			if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
				uint8_t *rec = ring_record(g, hdr, len & ~(uint32_t)(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT));
				if (!rec) {
					__atomic_store_n(g->consumer_pos, cons, __ATOMIC_RELEASE);
					return -ENOMEM;
				}
				uint32_t size = len & ~(uint32_t)(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);
				int err = r->stage_fd >= 0 ? on_frames(g, rec, size) : on_record(g, rec, size);
				if (err < 0) {
					__atomic_store_n(g->consumer_pos, cons, __ATOMIC_RELEASE);
					return err;
				}
				n++;
			}
			if (++since >= RING_PUBLISH_EVERY) {
				__atomic_store_n(g->consumer_pos, cons, __ATOMIC_RELEASE);
				since = 0;
			}
		}
	}
out:
	__atomic_store_n(g->consumer_pos, cons, __ATOMIC_RELEASE);
	return n;
}

/* Drain every ring once; like ring_buffer__consume(): records handled, or a negative errno. */
static int rings_consume(struct reader *r)
{
	int total = 0;
	for (int i = 0; i < r->nrings; i++) {
		int n = ring_consume(r, &r->ctxs[i]);
		if (n < 0)
			return n;
		total += n;
	}
	return total;
}

static void ring_unmap(struct ring_ctx *g)
{
	/* munmap of a mapping we made cannot fail in a way we could act on. */
	if (g->consumer_pos)
		(void)munmap(g->consumer_pos, g->page);
	if (g->producer_pos)
		(void)munmap(g->producer_pos, g->page + g->size);
	g->consumer_pos = g->producer_pos = NULL;
	g->data = NULL;
	free(g->wrap_buf);
	g->wrap_buf = NULL;
	g->wrap_cap = 0;
}

/* Map a ring buffer map for ring_consume (0, or an errno). */
static int ring_map(struct ring_ctx *g, int fd)
{
	struct bpf_map_info info;
	__u32 len = sizeof(info);
	void *p;

	memset(&info, 0, sizeof(info));
	if (bpf_obj_get_info_by_fd(fd, &info, &len))
		return errno;
	if (info.type != BPF_MAP_TYPE_RINGBUF || info.max_entries == 0 || (info.max_entries & (info.max_entries - 1)))
		return EINVAL;
	g->page = (size_t)sysconf(_SC_PAGESIZE);
	g->size = info.max_entries;
	g->mask = info.max_entries - 1;
	p = mmap(NULL, g->page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return errno;
	g->consumer_pos = p;
	/* The data area once, not twice as libbpf maps it to read wrapped records in place: the
	 * kernel fills in every page of the mapping at mmap time, so the second copy was another
	 * ring's worth of RSS (16 instead of 8 MiB by default). ring_record copies the rare record
	 * that wraps. */
	p = mmap(NULL, g->page + g->size, PROT_READ, MAP_SHARED, fd, (off_t)g->page);
	if (p == MAP_FAILED) {
		int e = errno;
		ring_unmap(g);
		return e;
	}
	g->producer_pos = p;
	g->data = (uint8_t *)p + g->page;
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct epoll_event evs[4];
	int32_t fatal = 0;

	while (!atomic_load(&r->stop)) {
		int timeout = r->poll_ms;
		if (r->count) {
			uint64_t age = now_ns() - r->batch_start_ns;
			int left = age >= r->flush_ns ? 0 : (int)((r->flush_ns - age) / 1000000ULL) + 1;
			if (left < timeout)
				timeout = left;
		}
		int n = epoll_wait(r->epfd, evs, 4, timeout);
		if (n < 0 && errno != EINTR) {
			fatal = errno;
			break;
		}
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == r->evfd) {
				uint64_t v;
				/* Only a wakeup: the value does not matter; EAGAIN is fine. */
				if (read(r->evfd, &v, sizeof(v)) < 0 && errno != EAGAIN) {
					fatal = errno;
					break;
				}
			}
		}
		if (fatal || atomic_load(&r->stop))
			break;
		unsigned fr = atomic_load(&r->flush_req);
		if (r->stage_fd >= 0 && (fr != r->flush_done || now_ns() - r->stage_last_ns >= r->stage_ns)) {
			int err = stage_flush_all(r, fr != r->flush_done);
			if (err < 0) {
				fatal = -err;
				break;
			}
		}
		/* The BPF side mostly submits without wakeup: always drain, woken or timed out. */
		int err = rings_consume(r);
		if (err < 0 && err != -ECANCELED) {
			fatal = -err;
			break;
		}
		if (atomic_load(&r->stop))
			break;
		if (fr != r->flush_done) {
			/* Records committed before the flush request may have landed after the drain
			 * above finished: drain once more after seeing the request, then acknowledge. */
			err = rings_consume(r);
			if (err < 0 && err != -ECANCELED) {
				fatal = -err;
				break;
			}
			r->flush_done = fr;
			if (!emit_batch(r, fr, 0))
				break;
		} else if (r->count && now_ns() - r->batch_start_ns >= r->flush_ns) {
			if (!emit_batch(r, 0, 0))
				break;
		}
	}
	if (fatal && !atomic_load(&r->stop)) {
		/* Tell JS why data stopped; pending records go with it. */
		emit_batch(r, 0, fatal);
	}
	/* Drop this thread's reference. After an abort (close) the blocked call already dropped it
	 * and this returns napi_invalid_arg: expected, nothing to do. */
	(void)napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
	return NULL;
}

static void reader_batch_finalize(napi_env env, void *data, void *hint);

/* Runs on the JS thread for each batch; env == NULL when the function is being torn down with
 * batches still queued: then only free them. */
static void reader_call_js(napi_env env, napi_value cb, void *context, void *data)
{
	struct batch_msg *m = data;
	napi_value ab = NULL, args[4], undef;
	bool external = false;
	(void)context;

	if (!env || !cb) {
		pool_give(m->buf, m->cap);
		free(m);
		return;
	}
	if (m->buf) {
		/* Zero copy: JS gets the batch memory itself. From here the message has two owners,
		 * this call and the finalizer (the message travels as the finalize hint). */
		atomic_store(&m->refs, 2);
		if (napi_create_external_arraybuffer(env, m->buf, m->len, reader_batch_finalize, m, &ab) == napi_ok) {
			external = true;
		} else {
			/* Runtimes that forbid external buffers: copy instead. No finalizer will run. */
			void *dst = NULL;
			atomic_store(&m->refs, 1);
			if (napi_create_arraybuffer(env, m->len, &dst, &ab) == napi_ok)
				memcpy(dst, m->buf, m->len);
			else
				ab = NULL;
			batch_msg_give_buf(m);
		}
	} else {
		void *dst = NULL;
		if (napi_create_arraybuffer(env, 0, &dst, &ab) != napi_ok)
			ab = NULL;
	}
	if (ab && napi_get_undefined(env, &undef) == napi_ok &&
	    napi_create_uint32(env, m->count, &args[1]) == napi_ok &&
	    napi_create_uint32(env, m->flush_seq, &args[2]) == napi_ok &&
	    napi_create_int32(env, m->err, &args[3]) == napi_ok) {
		args[0] = ab;
		/* An exception here surfaces as an uncaught exception: the TS wrapper never throws. */
		napi_call_function(env, undef, cb, 4, args, NULL);
	}
	/* Default: the batch lives for the callback only. Detach it, then hand its memory back to
	 * the pool right now: Node runs external-buffer finalizers from the event loop, long after
	 * GC, and at high rates that meant fresh mallocs for most batches. A view kept by mistake
	 * reads as detached (empty/TypeError), never as the next batch's data. Only a detach done
	 * here releases the memory: a buffer already detached by someone else (transferred) may
	 * still be referenced, and is left to the finalizer. */
	if (external && !m->keep) {
		bool detached = true;
		if (napi_is_detached_arraybuffer(env, ab, &detached) == napi_ok && !detached &&
		    napi_detach_arraybuffer(env, ab) == napi_ok)
			batch_msg_give_buf(m);
		else {
			/* Not detachable: the finalizer returns it. Clear the N-API error state. */
			const napi_extended_error_info *i;
			napi_get_last_error_info(env, &i);
		}
	}
	batch_msg_unref(m);
}

static void reader_batch_finalize(napi_env env, void *data, void *hint)
{
	struct batch_msg *m = hint;
	(void)env;
	(void)data;
	/* Returns the buffer unless reader_call_js did after detaching it (no double free). */
	batch_msg_give_buf(m);
	batch_msg_unref(m);
}

static void reader_stop(struct reader *r)
{
	uint64_t one = 1;

	if (r->closed)
		return;
	r->closed = true;
	atomic_store(&r->stop, true);
	if (r->thread_started) {
		/* Wake the thread if it sleeps in epoll_wait... */
		if (write(r->evfd, &one, sizeof(one)) < 0) {
			/* eventfd write can only fail on overflow: the thread is awake anyway. */
		}
		/* ...or unblock it if it waits for room in the JS queue. Can only fail if already
		 * released, which the closed flag rules out. */
		if (napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort) != napi_ok)
			fputs("retis_bpf: releasing the ring buffer callback failed\n", stderr);
		int err = pthread_join(r->thread, NULL);
		if (err)
			fprintf(stderr, "retis_bpf: joining the ring buffer thread failed: %s\n", strerror(err));
		r->thread_started = false;
	}
	for (int i = 0; r->ctxs && i < r->nrings_mapped; i++)
		ring_unmap(&r->ctxs[i]);
	r->nrings_mapped = 0;
	/* close() of an epoll fd/eventfd cannot fail in a way we could act on. */
	if (r->epfd >= 0)
		(void)close(r->epfd);
	if (r->evfd >= 0)
		(void)close(r->evfd);
	r->epfd = r->evfd = -1;
	if (r->buf)
		pool_give(r->buf, r->cap);
	r->buf = NULL;
	if (r->pool_share) {
		pool_adjust(-r->pool_share);
		r->pool_share = 0;
	}
}

static void reader_env_cleanup(void *arg)
{
	/* Environment teardown (process exit) with the reader still open: stop the thread first. */
	reader_stop(arg);
}

static void reader_finalize(napi_env env, void *data, void *hint)
{
	struct reader *r = data;
	(void)hint;
	if (!r->closed) {
		napi_remove_env_cleanup_hook(env, reader_env_cleanup, r);
		reader_stop(r);
	}
	if (r->dec_ref)
		(void)napi_delete_reference(env, r->dec_ref); /* only fails on a bad ref: nothing to do */
	free(r->ctxs);
	free(r);
}

static bool opt_u32(napi_env env, napi_value o, const char *k, uint32_t def, uint32_t *out)
{
	napi_value v;
	napi_valuetype t;

	*out = def;
	if (napi_get_named_property(env, o, k, &v) != napi_ok || napi_typeof(env, v, &t) != napi_ok)
		return false;
	if (t == napi_undefined)
		return true;
	return napi_get_value_uint32(env, v, out) == napi_ok;
}

/* ringbufOpen(mapFds[], { batchBytes, pollMs, flushMs, queue }, cb(ab, count, flushSeq, err)) */
static napi_value ringbuf_open(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	uint32_t nfds, batch_bytes, poll_ms, flush_ms, queue, stage_fd, stage_ms;
	struct reader *r;
	napi_value name, ext;
	struct epoll_event ev;
	int err;

	NAPI_CALL(env, napi_get_array_length(env, argv[0], &nfds));
	if (nfds == 0)
		return throw_type(env, "ringbufOpen: at least one ring buffer map fd");
	uint32_t keep = 0;
	if (!opt_u32(env, argv[1], "keepBatches", 0, &keep) ||
	    !opt_u32(env, argv[1], "batchBytes", 1 << 20, &batch_bytes) || !opt_u32(env, argv[1], "pollMs", 10, &poll_ms) ||
	    !opt_u32(env, argv[1], "flushMs", 10, &flush_ms) || !opt_u32(env, argv[1], "queue", 16, &queue) ||
	    !opt_u32(env, argv[1], "stageFlushFd", UINT32_MAX, &stage_fd) || !opt_u32(env, argv[1], "stageFlushMs", 50, &stage_ms))
		return throw_type(env, "ringbufOpen: bad options");
	if (batch_bytes < 4096)
		batch_bytes = 4096;
	int ncpus = 0;
	if (stage_fd != UINT32_MAX) {
		/* Checked once here, so the reader thread's flushes can only fail for new reasons. */
		int cpu = sched_getcpu();
		if ((ncpus = libbpf_num_possible_cpus()) < 0)
			return throw_errno(env, "libbpf_num_possible_cpus", -ncpus, "/sys/devices/system/cpu/possible");
		if ((err = stage_run((int)stage_fd, cpu < 0 ? 0 : cpu, false)) < 0)
			return throw_errno(env, "BPF_PROG_TEST_RUN", -err,
					   "the staged records' flush program, run on one CPU (BPF_F_TEST_RUN_ON_CPU, Linux 5.10+)");
	}
	struct decoder *dec = NULL;
	napi_value dec_v = NULL;
	{
		napi_valuetype t;
		if (napi_get_named_property(env, argv[1], "decoder", &dec_v) != napi_ok || napi_typeof(env, dec_v, &t) != napi_ok)
			return throw_type(env, "ringbufOpen: bad options");
		if (t != napi_undefined && !(dec = unwrap(env, dec_v, &DECODER_TAG, "column decoder")))
			return NULL;
	}

	r = calloc(1, sizeof(*r));
	if (!r || !(r->ctxs = calloc(nfds, sizeof(*r->ctxs)))) {
		free(r);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	r->epfd = r->evfd = -1;
	r->nrings_mapped = (int)nfds; /* calloc'd: unmapped entries are NULL */
	r->batch_bytes = batch_bytes;
	r->keep_batches = keep != 0;
	r->poll_ms = (int)poll_ms;
	r->flush_ns = (uint64_t)flush_ms * 1000000ULL;
	r->stage_fd = stage_fd == UINT32_MAX ? -1 : (int)stage_fd;
	r->stage_ns = (uint64_t)stage_ms * 1000000ULL;
	r->ncpus = ncpus;
	r->env = env;
	r->pool_share = (int)(queue ? queue : 16) + 2;
	pool_adjust(r->pool_share);
	if (dec) {
		if (napi_create_reference(env, dec_v, 1, &r->dec_ref) != napi_ok) {
			pool_adjust(-r->pool_share);
			free(r->ctxs);
			free(r);
			napi_throw_error(env, NULL, "napi_create_reference failed");
			return NULL;
		}
		r->dec = dec;
	}

	log_reset();
	for (uint32_t i = 0; i < nfds; i++) {
		napi_value v;
		int32_t fd;
		if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_int32(env, v, &fd) != napi_ok) {
			throw_type(env, "ringbufOpen: map fds must be numbers");
			goto fail;
		}
		r->ctxs[i].r = r;
		r->ctxs[i].idx = i;
		/* Mapped and read by ring_consume() (not libbpf's ring_buffer: see RING_PUBLISH_EVERY;
		 * a second mapping would also count the ring twice in RSS). */
		if ((err = ring_map(&r->ctxs[i], fd)) != 0) {
			throw_errno(env, "mmap(ring buffer)", err, NULL);
			goto fail;
		}
	}
	r->nrings = (int)nfds;
	/* One epoll over the rings (readable when the BPF side wakes us) plus an eventfd, so
	 * close/flush wake the thread immediately instead of after the poll timeout. */
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	r->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->epfd < 0 || r->evfd < 0) {
		throw_errno(env, r->epfd < 0 ? "epoll_create1" : "eventfd", errno, NULL);
		goto fail;
	}
	for (uint32_t i = 0; i < nfds; i++) {
		napi_value v;
		int32_t fd;
		if (napi_get_element(env, argv[0], i, &v) != napi_ok || napi_get_value_int32(env, v, &fd) != napi_ok) {
			throw_type(env, "ringbufOpen: map fds must be numbers");
			goto fail;
		}
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev)) {
			throw_errno(env, "epoll_ctl", errno, "ring buffer");
			goto fail;
		}
	}
	ev.events = EPOLLIN;
	ev.data.fd = r->evfd;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->evfd, &ev)) {
		throw_errno(env, "epoll_ctl", errno, "eventfd");
		goto fail;
	}
	if (napi_create_string_utf8(env, "retis_bpf.ringbuf", NAPI_AUTO_LENGTH, &name) != napi_ok ||
	    /* 2 users: the reader thread and the JS side (which aborts on close). */
	    napi_create_threadsafe_function(env, argv[2], NULL, name, queue ? queue : 16, 2, NULL, NULL, NULL,
					    reader_call_js, &r->tsfn) != napi_ok) {
		napi_throw_error(env, NULL, "napi_create_threadsafe_function failed");
		goto fail;
	}
	if ((err = pthread_create(&r->thread, NULL, reader_main, r)) != 0) {
		napi_release_threadsafe_function(r->tsfn, napi_tsfn_abort);
		napi_release_threadsafe_function(r->tsfn, napi_tsfn_release);
		throw_errno(env, "pthread_create", err, NULL);
		goto fail;
	}
	r->thread_started = true;
	if (napi_add_env_cleanup_hook(env, reader_env_cleanup, r) != napi_ok ||
	    napi_create_external(env, r, reader_finalize, NULL, &ext) != napi_ok ||
	    napi_type_tag_object(env, ext, &READER_TAG) != napi_ok) {
		napi_remove_env_cleanup_hook(env, reader_env_cleanup, r);
		reader_stop(r);
		if (r->dec_ref)
			(void)napi_delete_reference(env, r->dec_ref);
		free(r->ctxs);
		free(r);
		napi_throw_error(env, NULL, "napi_create_external failed");
		return NULL;
	}
	return ext;
fail:
	r->closed = false;
	reader_stop(r);
	if (r->dec_ref)
		(void)napi_delete_reference(env, r->dec_ref);
	free(r->ctxs);
	free(r);
	return NULL;
}

static struct reader *get_reader(napi_env env, napi_value v)
{
	return unwrap(env, v, &READER_TAG, "ring buffer reader");
}

/* ringbufFlush(r) -> sequence number the flush batch will carry */
static napi_value ringbuf_flush(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct reader *r = get_reader(env, argv[0]);
	uint64_t one = 1;
	unsigned seq;

	if (!r)
		return NULL;
	if (r->closed) {
		napi_throw_error(env, "ERR_BPF_CLOSED", "ring buffer reader is closed");
		return NULL;
	}
	seq = atomic_fetch_add(&r->flush_req, 1) + 1;
	if (seq == 0) /* 0 means "not a flush batch": skip it on wrap-around */
		seq = atomic_fetch_add(&r->flush_req, 1) + 1;
	if (write(r->evfd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		return throw_errno(env, "write(eventfd)", errno, NULL);
	napi_value v;
	NAPI_CALL(env, napi_create_uint32(env, seq, &v));
	return v;
}

static napi_value ringbuf_stats(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct reader *r = get_reader(env, argv[0]);
	napi_value o, v;

	if (!r)
		return NULL;
	NAPI_CALL(env, napi_create_object(env, &o));
#define STAT(k, field)                                                                            \
	NAPI_CALL(env, napi_create_bigint_uint64(env, atomic_load(&r->field), &v));             \
	NAPI_CALL(env, napi_set_named_property(env, o, k, v));
	STAT("records", records);
	STAT("bytes", bytes);
	STAT("batches", batches);
	STAT("oversize", oversize);
	STAT("buffersAllocated", buffers_allocated);
#undef STAT
	NAPI_CALL(env, napi_create_bigint_uint64(env, atomic_load(&pool_misses), &v));
	NAPI_CALL(env, napi_set_named_property(env, o, "poolMisses", v));
	return o;
}

static napi_value ringbuf_close(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct reader *r = get_reader(env, argv[0]);

	if (!r)
		return NULL;
	if (!r->closed) {
		napi_remove_env_cleanup_hook(env, reader_env_cleanup, r);
		reader_stop(r);
	}
	return undefined(env);
}

//// FILTERS (pcap compile, instruction patching, test runs) ////

#include "filters.inc.c"
//// NFNETLINK (nft trace events) ////

/*
 * nfnetlinkOpen(netnsPath | null, group, rcvbufBytes) -> fd: a NETLINK_NETFILTER socket bound to
 * one multicast group (NFNLGRP_NFTRACE for `nft monitor trace` events), created in the network
 * namespace at netnsPath (e.g. /run/netns/x, /proc/PID/ns/net) or in ours. Node has no netlink
 * sockets; JS reads the fd with fs.read on a libuv thread. The socket is blocking with a short
 * receive timeout so those reads return (EAGAIN) and the fd can be closed between them.
 * setns(CLONE_NEWNET) only moves the calling thread, which is moved back before returning.
 */
static napi_value nfnetlink_open(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	char *ns_path = NULL;
	int64_t group = 0, rcvbuf = 0;
	int self_ns = -1, target_ns = -1, fd = -1, err = 0;
	const char *op = NULL;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 100 * 1000 };
	napi_value ret;

	if (!get_opt_string(env, argv[0], "netnsPath", &ns_path))
		return NULL;
	if (!get_i64(env, argv[1], &group) || !get_i64(env, argv[2], &rcvbuf)) {
		free(ns_path);
		return NULL;
	}
	if (group <= 0 || group > 31) {
		free(ns_path);
		return throw_type(env, "group must be 1..31");
	}
	if (ns_path) {
		self_ns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
		if (self_ns < 0) {
			err = errno;
			op = "open /proc/thread-self/ns/net";
			goto out;
		}
		target_ns = open(ns_path, O_RDONLY | O_CLOEXEC);
		if (target_ns < 0) {
			err = errno;
			op = "open network namespace";
			goto out;
		}
		if (setns(target_ns, CLONE_NEWNET) < 0) {
			err = errno;
			op = "setns(CLONE_NEWNET)";
			goto out;
		}
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (fd < 0) {
		err = errno;
		op = "socket(AF_NETLINK, NETLINK_NETFILTER)";
	} else if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = errno;
		op = "bind(netlink)";
	} else if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &(int){ (int)group }, sizeof(int)) < 0) {
		err = errno;
		op = "setsockopt(NETLINK_ADD_MEMBERSHIP)";
	} else if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		err = errno;
		op = "setsockopt(SO_RCVTIMEO)";
	} else if (rcvbuf > 0 && setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &(int){ (int)rcvbuf }, sizeof(int)) < 0 &&
		   setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &(int){ (int)rcvbuf }, sizeof(int)) < 0) {
		err = errno;
		op = "setsockopt(SO_RCVBUF)";
	}
	if (err && fd >= 0) {
		close(fd);
		fd = -1;
	}
	/* Back to our own namespace whatever happened: a thread left elsewhere would be a silent bug. */
	if (self_ns >= 0 && target_ns >= 0 && setns(self_ns, CLONE_NEWNET) < 0) {
		int e2 = errno;
		if (fd >= 0)
			close(fd);
		fd = -1;
		fprintf(stderr, "retis_bpf: cannot return to the original network namespace: %s\n", strerror(e2));
		abort();
	}
out:
	if (target_ns >= 0)
		close(target_ns);
	if (self_ns >= 0)
		close(self_ns);
	if (err) {
		napi_value r = throw_errno(env, op, err, ns_path);
		free(ns_path);
		return r;
	}
	free(ns_path);
	NAPI_CALL(env, napi_create_int32(env, fd, &ret));
	return ret;
}

//// COLUMN DECODER (decoder.h) ////

static void decoder_finalize(napi_env env, void *data, void *hint)
{
	(void)env;
	(void)hint;
	dec_free(data);
}

static struct decoder *get_decoder(napi_env env, napi_value v)
{
	return unwrap(env, v, &DECODER_TAG, "column decoder");
}

/* A JS Uint8Array (or null: absent) as a decoder string, cut at DEC_STR_MAX bytes. */
static bool get_dec_str(napi_env env, napi_value v, struct dec_str *out)
{
	napi_valuetype t;
	void *data;
	size_t len;

	memset(out, 0, sizeof(*out));
	if (napi_typeof(env, v, &t) != napi_ok)
		return false;
	if (t == napi_null || t == napi_undefined)
		return true;
	if (!get_bytes(env, v, &data, &len))
		return false;
	out->present = 1;
	out->len = (uint8_t)(len > DEC_STR_MAX ? DEC_STR_MAX : len);
	memcpy(out->b, data, out->len);
	return true;
}

/* decoderCreate(program: Uint32Array, probes: (Uint8Array[] | null)[], maxEvents: number, seq: number) */
static napi_value decoder_create(napi_env env, napi_callback_info info)
{
	GET_ARGS(4);
	napi_typedarray_type tt;
	size_t n, off;
	void *words;
	napi_value ab, ext;
	uint32_t nprobes;
	int64_t max_events, seq;
	const char *why = NULL;
	bool is_ta = false;

	if (napi_is_typedarray(env, argv[0], &is_ta) != napi_ok || !is_ta ||
	    napi_get_typedarray_info(env, argv[0], &tt, &n, &words, &ab, &off) != napi_ok || tt != napi_uint32_array)
		return throw_type(env, "decoderCreate: program must be a Uint32Array");
	if (napi_get_array_length(env, argv[1], &nprobes) != napi_ok)
		return throw_type(env, "decoderCreate: probes must be an array");
	if (!get_i64(env, argv[2], &max_events) || !get_i64(env, argv[3], &seq))
		return NULL;
	struct decoder *d = dec_new(words, n, &why);
	if (!d) {
		char m[160];
		snprintf(m, sizeof(m), "decoderCreate: %s", why);
		return throw_type(env, m);
	}
	d->max_events = max_events < 0 ? UINT64_MAX : (uint64_t)max_events;
	d->seq = seq < 0 ? 0 : (uint64_t)seq;
	d->nprobes = nprobes;
	d->probes = calloc(nprobes ? nprobes : 1, sizeof(*d->probes));
	d->per_probe = calloc(nprobes ? nprobes : 1, sizeof(*d->per_probe));
	if (!d->probes || !d->per_probe) {
		dec_free(d);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	for (uint32_t i = 0; i < nprobes; i++) {
		napi_value p, sv;
		napi_valuetype t;
		uint32_t ns;
		if (napi_get_element(env, argv[1], i, &p) != napi_ok || napi_typeof(env, p, &t) != napi_ok)
			goto bad;
		if (t == napi_null || t == napi_undefined)
			continue;
		if (napi_get_array_length(env, p, &ns) != napi_ok)
			goto bad;
		d->probes[i].str = calloc(ns ? ns : 1, sizeof(struct dec_str));
		if (!d->probes[i].str) {
			dec_free(d);
			napi_throw_error(env, NULL, "out of memory");
			return NULL;
		}
		d->probes[i].nstr = ns;
		for (uint32_t k = 0; k < ns; k++)
			if (napi_get_element(env, p, k, &sv) != napi_ok || !get_dec_str(env, sv, &d->probes[i].str[k]))
				goto bad;
		d->probes[i].valid = true;
	}
	if (napi_create_external(env, d, decoder_finalize, NULL, &ext) != napi_ok ||
	    napi_type_tag_object(env, ext, &DECODER_TAG) != napi_ok) {
		dec_free(d);
		napi_throw_error(env, NULL, "napi_create_external failed");
		return NULL;
	}
	return ext;
bad:
	dec_free(d);
	{
		bool pending = false;
		if (napi_is_exception_pending(env, &pending) == napi_ok && pending)
			return NULL;
	}
	return throw_type(env, "decoderCreate: probes must be arrays of Uint8Array (or null)");
}

/* decoderSetLookup(d, table, key, slots: (Uint8Array | null)[]) -> false when the table is full */
static napi_value decoder_set_lookup(napi_env env, napi_callback_info info)
{
	GET_ARGS(4);
	struct decoder *d = get_decoder(env, argv[0]);
	uint32_t table, key, ns;
	struct dec_str slots[DEC_LOOKUP_SLOTS];
	napi_value r;

	if (!d)
		return NULL;
	if (napi_get_value_uint32(env, argv[1], &table) != napi_ok || napi_get_value_uint32(env, argv[2], &key) != napi_ok ||
	    napi_get_array_length(env, argv[3], &ns) != napi_ok || table >= DEC_MAX_LOOKUP_TABLES || !d->lookups[table])
		return throw_type(env, "decoderSetLookup: bad table, key or slots");
	memset(slots, 0, sizeof(slots));
	for (uint32_t k = 0; k < ns && k < DEC_LOOKUP_SLOTS; k++) {
		napi_value sv;
		if (napi_get_element(env, argv[3], k, &sv) != napi_ok || !get_dec_str(env, sv, &slots[k]))
			return NULL;
	}
	NAPI_CALL(env, napi_get_boolean(env, dec_lookup_add(d->lookups[table], key, slots), &r));
	return r;
}

static bool get_ab(napi_env env, napi_value v, uint8_t **data, size_t *len)
{
	bool is_ab = false;
	void *p;
	if (napi_is_arraybuffer(env, v, &is_ab) != napi_ok || !is_ab ||
	    napi_get_arraybuffer_info(env, v, &p, len) != napi_ok)
		return false;
	*data = p;
	return true;
}

/* decoderInitArena(d, arena: ArrayBuffer): start an empty batch in it. */
static napi_value decoder_init_arena(napi_env env, napi_callback_info info)
{
	GET_ARGS(2);
	struct decoder *d = get_decoder(env, argv[0]);
	uint8_t *arena;
	size_t alen;

	if (!d)
		return NULL;
	if (!get_ab(env, argv[1], &arena, &alen) || alen < d->arena_bytes)
		return throw_type(env, "decoderInitArena: arena must be an ArrayBuffer of the program's size");
	dec_arena_init(d, arena);
	return undefined(env);
}

/*
 * decoderDecode(d, arena, records: ArrayBuffer, offset, end | undefined) -> offset of the first record not
 * decoded (`end`, default records.byteLength, when all were): it stops early when the arena is
 * full. Records as the reader's raw batches hold them: u32 size, u32 ring, payload, pad to 8.
 */
static napi_value decoder_decode(napi_env env, napi_callback_info info)
{
	GET_ARGS(5);
	struct decoder *d = get_decoder(env, argv[0]);
	uint8_t *arena, *recs;
	size_t alen, rlen;
	uint32_t p;
	napi_value r;

	if (!d)
		return NULL;
	if (!get_ab(env, argv[1], &arena, &alen) || alen < d->arena_bytes || !get_ab(env, argv[2], &recs, &rlen) ||
	    napi_get_value_uint32(env, argv[3], &p) != napi_ok)
		return throw_type(env, "decoderDecode(decoder, arena, records, offset, end?)");
	{
		napi_valuetype t;
		uint32_t end;
		if (napi_typeof(env, argv[4], &t) != napi_ok)
			return NULL;
		if (t != napi_undefined) {
			if (napi_get_value_uint32(env, argv[4], &end) != napi_ok)
				return throw_type(env, "decoderDecode: end must be a number");
			if (end < rlen)
				rlen = end;
		}
	}
	while ((size_t)p + 8 <= rlen) {
		uint32_t size;
		memcpy(&size, recs + p, 4);
		size_t next = (size_t)p + 8 + (((size_t)size + 7) & ~(size_t)7);
		if (next > rlen) {
			dec_inc(&d->malformed); /* truncated batch: the rest cannot be framed */
			p = (uint32_t)rlen;
			break;
		}
		if (dec_record(d, arena, recs + p + 8, size) == DEC_FULL) {
			if (((uint32_t *)arena)[DEC_H_ROWS] == 0) {
				dec_inc(&d->malformed); /* cannot fit even an empty arena */
			} else
				break;
		}
		p = (uint32_t)next;
	}
	NAPI_CALL(env, napi_create_uint32(env, p, &r));
	return r;
}

/* decoderStats(d) -> { seq, events, ignored, malformed, perProbe: Float64Array } */
static napi_value decoder_stats(napi_env env, napi_callback_info info)
{
	GET_ARGS(1);
	struct decoder *d = get_decoder(env, argv[0]);
	napi_value o, v, ab;
	void *buf;

	if (!d)
		return NULL;
	NAPI_CALL(env, napi_create_object(env, &o));
#define DSTAT(k, field)                                                                           \
	NAPI_CALL(env, napi_create_double(env, (double)dec_load(&d->field), &v));                 \
	NAPI_CALL(env, napi_set_named_property(env, o, k, v));
	DSTAT("seq", seq);
	DSTAT("events", events);
	DSTAT("ignored", ignored);
	DSTAT("malformed", malformed);
#undef DSTAT
	NAPI_CALL(env, napi_create_arraybuffer(env, (size_t)d->nprobes * 8, &buf, &ab));
	for (uint32_t i = 0; i < d->nprobes; i++)
		((double *)buf)[i] = (double)dec_load(&d->per_probe[i]);
	NAPI_CALL(env, napi_create_typedarray(env, napi_float64_array, d->nprobes, ab, 0, &v));
	NAPI_CALL(env, napi_set_named_property(env, o, "perProbe", v));
	return o;
}

//// MODULE ////

static napi_value init(napi_env env, napi_value exports)
{
	const char *dbg = getenv("RETIS_BPF_DEBUG");
	log_debug = dbg && *dbg && strcmp(dbg, "0") != 0;
	log_echo = dbg && strcmp(dbg, "2") == 0;
	libbpf_set_print(libbpf_print_cb);

#define FN(name, fn) { name, NULL, fn, NULL, NULL, NULL, napi_enumerable, NULL }
	const napi_property_descriptor props[] = {
		FN("version", version),
		FN("objectOpen", object_open),
		FN("objectClose", object_close),
		FN("objectLoad", object_load),
		FN("objectLoadAsync", object_load_async),
		FN("mallocTrim", malloc_trim_fn),
		FN("objectPrograms", object_programs),
		FN("objectMaps", object_maps),
		FN("objectBtf", object_btf),
		FN("programSetAutoload", program_set_autoload),
		FN("programSetAttachTarget", program_set_attach_target),
		FN("programFd", program_fd),
		FN("mapFd", map_fd),
		FN("mapSetMaxEntries", map_set_max_entries),
		FN("mapReuseFd", map_reuse_fd),
		FN("mapSetInitialValue", map_set_initial_value),
		FN("mapInitialValue", map_initial_value),
		FN("attachTracepoint", attach_tracepoint),
		FN("attachRawTracepoint", attach_raw_tracepoint),
		FN("attachTrace", attach_trace),
		FN("attachKprobe", attach_kprobe),
		FN("attachUprobe", attach_uprobe),
		FN("attachUsdt", attach_usdt),
		FN("linkDestroy", link_destroy),
		FN("mapLookup", map_lookup),
		FN("mapUpdate", map_update),
		FN("mapDelete", map_delete),
		FN("numPossibleCpus", num_possible_cpus),
		FN("probeProgType", probe_prog_type),
		FN("probeMapType", probe_map_type),
		FN("probeHelper", probe_helper),
		FN("probeProgLoad", probe_prog_load),
		FN("ringbufOpen", ringbuf_open),
		FN("ringbufFlush", ringbuf_flush),
		FN("ringbufStats", ringbuf_stats),
		FN("ringbufClose", ringbuf_close),
		RETIS_FILTER_FNS
		FN("nfnetlinkOpen", nfnetlink_open),
		FN("decoderCreate", decoder_create),
		FN("decoderSetLookup", decoder_set_lookup),
		FN("decoderInitArena", decoder_init_arena),
		FN("decoderDecode", decoder_decode),
		FN("decoderStats", decoder_stats),
	};
#undef FN
	NAPI_CALL(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
	return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
