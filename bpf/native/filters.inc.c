// SPDX-License-Identifier: GPL-2.0
/*
 * Filters support for retis_bpf.c (included at its end, so it shares its static helpers):
 *
 * - pcapCompile(expr, linktype, snaplen): libpcap compiles a pcap-filter expression to classic BPF
 *   (pcap_open_dead + pcap_compile, no capture handle, no privileges). Errors carry libpcap's own
 *   message (`.pcapError`), verbatim.
 * - pcapFilter(cbpf, packet, wirelen): libpcap's interpreter (bpf_filter), the reference the
 *   translator is tested against.
 * - insnPatchInit() / programSetPatch(h, prog, magic, insns): replace placeholder regions of a
 *   program's final instructions right before it is loaded (see capture/progs/filter.bpf.h).
 *   libbpf only exposes the final instructions (subprograms appended, CO-RE relocated) from a
 *   prog_prepare_load_fn callback, and only for programs whose SEC() maps to a handler registered
 *   before bpf_object__open: insnPatchInit() registers handlers for the exact section names our
 *   probes use. Registration is process-wide, so it happens only when a filter is used.
 * - programTestRun(h, prog, ctx): BPF_PROG_TEST_RUN (tests run translated filters in the kernel).
 */
#include "pcap_glue.h"

#define PCAP_GLUE_ERRBUF 512

#define PATCH_NOP_CODE (BPF_JMP | BPF_JA)

struct insn_patch {
	struct insn_patch *next;
	struct bpf_program *prog;
	uint32_t magic;
	struct bpf_insn *insns;
	size_t cnt;
	bool applied;
};

static struct insn_patch *patches;
static bool patch_handlers_registered;
/* patches is read by prog_prepare_load on the worker threads of objectLoadAsync while the JS
 * thread adds the patches of the next instances (or forgets those of a closed one). */
static pthread_mutex_t patch_mu = PTHREAD_MUTEX_INITIALIZER;

static void patches_forget_obj(struct bpf_object *obj)
{
	struct insn_patch **pp = &patches;

	pthread_mutex_lock(&patch_mu);

	while (*pp) {
		struct insn_patch *p = *pp;
		struct bpf_program *q;
		bool mine = false;

		bpf_object__for_each_program(q, obj) {
			if (q == p->prog)
				mine = true;
		}
		if (mine) {
			*pp = p->next;
			free(p->insns);
			free(p);
		} else {
			pp = &p->next;
		}
	}
	pthread_mutex_unlock(&patch_mu);
}

/* A message for the failing call's error (libbpfLog), like libbpf's own warnings. */
static void patch_warn(const char *fmt, ...)
{
	char line[512];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(line))
		n = sizeof(line) - 1;
	if (log_echo)
		fputs(line, stderr);
	pthread_mutex_lock(&log_mu);
	log_append(line, (size_t)n);
	pthread_mutex_unlock(&log_mu);
}

static bool is_nop(const struct bpf_insn *i)
{
	return i->code == PATCH_NOP_CODE && i->dst_reg == 0 && i->src_reg == 0 && i->off == 0 && i->imm == 0;
}

/*
 * prog_prepare_load_fn for the sections we registered. It must also do what libbpf's own
 * handler does for them (libbpf_prepare_prog_load in 1.1): nothing for raw_tp, tracepoint and
 * kprobe; for tp_btf/fentry/fexit, refuse a program without attach target (we always set it with
 * bpf_program__set_attach_target, and libbpf's resolution from the section name is not public).
 */
static int patch_prepare_load(struct bpf_program *prog, struct bpf_prog_load_opts *opts, long cookie)
{
	const struct bpf_insn *cur = bpf_program__insns(prog);
	size_t cnt = bpf_program__insn_cnt(prog);
	struct bpf_insn *copy = NULL;
	struct insn_patch *p;
	int err = 0;

	if (cookie && opts->attach_btf_id == 0) {
		patch_warn("retis_bpf: prog '%s': no BTF attach target: call bpf_program__set_attach_target before load\n", bpf_program__name(prog));
		return -EINVAL;
	}
	pthread_mutex_lock(&patch_mu);
	for (p = patches; p; p = p->next) {
		size_t i, n;

		if (p->prog != prog)
			continue;
		if (!cur || cnt == 0) {
			patch_warn("retis_bpf: prog '%s': no instructions to patch\n", bpf_program__name(prog));
			err = -EINVAL;
			goto out;
		}
		if (!copy) {
			copy = malloc(cnt * sizeof(*copy));
			if (!copy) {
				err = -ENOMEM;
				goto out;
			}
			memcpy(copy, cur, cnt * sizeof(*copy));
		}
		/* The region: `call MAGIC` followed by nops, as long as the replacement. The same
		 * placeholder can appear more than once (an inlined caller): patch every copy. */
		for (i = 0; i < cnt; i++) {
			if (copy[i].code != (BPF_JMP | BPF_CALL) || copy[i].src_reg != 0 || (uint32_t)copy[i].imm != p->magic)
				continue;
			for (n = 1; i + n < cnt && n < p->cnt && is_nop(&copy[i + n]); n++)
				;
			if (n != p->cnt) {
				patch_warn("retis_bpf: prog '%s': placeholder 0x%x has room for %zu instructions, the code has %zu (object built with another RETIS_FILTER_ROOM: run npm run build:bpf)\n",
					bpf_program__name(prog), p->magic, n, p->cnt);
				err = -E2BIG;
				goto out;
			}
			memcpy(&copy[i], p->insns, p->cnt * sizeof(*copy));
			p->applied = true;
			i += n - 1;
		}
	}
	if (copy) {
		err = bpf_program__set_insns(prog, copy, cnt);
		if (err)
			patch_warn("retis_bpf: prog '%s': bpf_program__set_insns failed: %d\n", bpf_program__name(prog), err);
	}
out:
	pthread_mutex_unlock(&patch_mu);
	free(copy);
	return err;
}

/* insnPatchInit() -> undefined. Idempotent. */
static napi_value insn_patch_init(napi_env env, napi_callback_info info)
{
	static const struct {
		const char *sec;
		enum bpf_prog_type type;
		enum bpf_attach_type attach;
		long btf; /* cookie: needs a BTF attach target */
	} secs[] = {
		{ "raw_tp", BPF_PROG_TYPE_RAW_TRACEPOINT, 0, 0 },
		{ "tracepoint", BPF_PROG_TYPE_TRACEPOINT, 0, 0 },
		{ "kprobe", BPF_PROG_TYPE_KPROBE, 0, 0 },
		{ "tp_btf", BPF_PROG_TYPE_TRACING, BPF_TRACE_RAW_TP, 1 },
		{ "fentry", BPF_PROG_TYPE_TRACING, BPF_TRACE_FENTRY, 1 },
		{ "fexit", BPF_PROG_TYPE_TRACING, BPF_TRACE_FEXIT, 1 },
	};
	size_t i;

	(void)info;
	if (patch_handlers_registered)
		return undefined(env);
	for (i = 0; i < sizeof(secs) / sizeof(secs[0]); i++) {
		LIBBPF_OPTS(libbpf_prog_handler_opts, o, .cookie = secs[i].btf, .prog_prepare_load_fn = patch_prepare_load);
		int id = libbpf_register_prog_handler(secs[i].sec, secs[i].type, secs[i].attach, &o);

		if (id < 0)
			return throw_errno(env, "libbpf_register_prog_handler", id, secs[i].sec);
	}
	patch_handlers_registered = true;
	return undefined(env);
}

/* programSetPatch(h, prog, magic, insns) -> undefined. Before load; replaces an earlier patch. */
static napi_value program_set_patch(napi_env env, napi_callback_info info)
{
	GET_ARGS(4);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *prog;
	struct insn_patch *p, **pp;
	uint32_t magic;
	void *data;
	size_t len;

	if (!obj)
		return NULL;
	prog = get_prog(env, obj, argv[1]);
	if (!prog)
		return NULL;
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &magic));
	if (!get_bytes(env, argv[3], &data, &len))
		return NULL;
	if (len == 0 || len % sizeof(struct bpf_insn))
		return throw_type(env, "instructions must be a non-empty multiple of 8 bytes");
	if (!patch_handlers_registered) {
		napi_throw_error(env, "ERR_BPF_PATCH", "insnPatchInit() must be called before the object is opened");
		return NULL;
	}
	pthread_mutex_lock(&patch_mu);
	for (pp = &patches; *pp; pp = &(*pp)->next) {
		if ((*pp)->prog == prog && (*pp)->magic == magic) {
			p = *pp;
			*pp = p->next;
			free(p->insns);
			free(p);
			break;
		}
	}
	p = calloc(1, sizeof(*p));
	if (!p || !(p->insns = malloc(len))) {
		pthread_mutex_unlock(&patch_mu);
		free(p);
		napi_throw_error(env, NULL, "out of memory");
		return NULL;
	}
	memcpy(p->insns, data, len);
	p->cnt = len / sizeof(struct bpf_insn);
	p->prog = prog;
	p->magic = magic;
	p->next = patches;
	patches = p;
	pthread_mutex_unlock(&patch_mu);
	return undefined(env);
}

/* programTestRun(h, prog, ctxIn | null) -> { retval, durationNs } */
static napi_value program_test_run(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	struct bpf_object *obj = get_obj(env, argv[0]);
	struct bpf_program *prog;
	napi_valuetype t;
	void *ctx = NULL;
	size_t ctx_len = 0;
	napi_value o;
	int fd, err;

	if (!obj)
		return NULL;
	prog = get_prog(env, obj, argv[1]);
	if (!prog)
		return NULL;
	NAPI_CALL(env, napi_typeof(env, argv[2], &t));
	if (t != napi_null && t != napi_undefined && !get_bytes(env, argv[2], &ctx, &ctx_len))
		return NULL;
	fd = bpf_program__fd(prog);
	if (fd < 0)
		return throw_errno(env, "bpf_program__fd", fd, bpf_program__name(prog));
	LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = ctx, .ctx_size_in = (uint32_t)ctx_len);
	err = bpf_prog_test_run_opts(fd, &opts);
	if (err)
		return throw_errno(env, "bpf_prog_test_run_opts", errno ? errno : -err, bpf_program__name(prog));
	NAPI_CALL(env, napi_create_object(env, &o));
	if (!set_prop(env, o, "retval", make_i32(env, (int32_t)opts.retval)) ||
	    !set_prop(env, o, "durationNs", make_i32(env, (int32_t)opts.duration)))
		return NULL;
	return o;
}

/* pcapCompile(expr, linktype, snaplen) -> Uint8Array of classic BPF instructions (8 bytes each). */
static napi_value pcap_compile_js(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	char *expr = get_string(env, argv[0], "filter expression");
	int32_t linktype, snaplen;
	char err[PCAP_GLUE_ERRBUF];
	napi_value r = NULL;
	void *insns;
	size_t len;

	if (!expr)
		return NULL;
	if (napi_get_value_int32(env, argv[1], &linktype) != napi_ok || napi_get_value_int32(env, argv[2], &snaplen) != napi_ok) {
		free(expr);
		return throw_type(env, "linktype and snaplen must be numbers");
	}
	if (retis_pcap_compile(expr, linktype, snaplen, &insns, &len, err, sizeof(err)) != 0) {
		napi_value jmsg, jerr, v;

		/* libpcap's message, verbatim, also as .pcapError so callers need not parse it. */
		if (napi_create_string_utf8(env, err, NAPI_AUTO_LENGTH, &jmsg) == napi_ok &&
		    napi_create_error(env, NULL, jmsg, &jerr) == napi_ok) {
			if (napi_create_string_utf8(env, err, NAPI_AUTO_LENGTH, &v) == napi_ok)
				napi_set_named_property(env, jerr, "pcapError", v);
			napi_throw(env, jerr);
		} else {
			napi_throw_error(env, "ERR_PCAP", err);
		}
		free(expr);
		return NULL;
	}
	r = make_u8(env, insns, len);
	free(insns);
	free(expr);
	return r;
}

/* pcapFilter(cbpf, packet, wirelen) -> libpcap's verdict (bpf_filter: 0 = no match). */
static napi_value pcap_filter_js(napi_env env, napi_callback_info info)
{
	GET_ARGS(3);
	void *code, *pkt;
	size_t code_len, pkt_len;
	uint32_t wirelen;
	napi_value r;

	if (!get_bytes(env, argv[0], &code, &code_len) || !get_bytes(env, argv[1], &pkt, &pkt_len))
		return NULL;
	NAPI_CALL(env, napi_get_value_uint32(env, argv[2], &wirelen));
	if (code_len == 0 || code_len % 8)
		return throw_type(env, "cBPF must be a non-empty multiple of 8 bytes");
	NAPI_CALL(env, napi_create_uint32(env, retis_pcap_filter(code, pkt, wirelen, (unsigned int)pkt_len), &r));
	return r;
}

#define RETIS_FILTER_FNS                                                                           \
	FN("insnPatchInit", insn_patch_init), FN("programSetPatch", program_set_patch),             \
		FN("programTestRun", program_test_run), FN("pcapCompile", pcap_compile_js),          \
		FN("pcapFilter", pcap_filter_js),
