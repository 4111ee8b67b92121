// SPDX-License-Identifier: GPL-2.0
/*
 * Column decoder: ring-buffer records to Arrow column buffers, driven by a program built in
 * TypeScript from the record layout (capture/columns-plan.ts). This file knows nothing about
 * any particular record: offsets, types, sections and columns all come from the program, so a
 * field added to a *.layout.ts needs only a mapping entry on the TS side.
 *
 * Why native: decoding in JS cost ~1 µs per event (byte loops for packets and names, one
 * DataView read per field); here it is ~0.1 µs, and it runs on the reader thread, next to the
 * ring, instead of on the JS thread that writes the file. Records are decoded straight from
 * the ring's memory: the (mostly unused) snaplen room of a record is never copied.
 *
 * An "arena" is one batch of columns in one buffer (layout computed by the TS side):
 *   u32 header words: rows, misses, var_pos[nvar], bitmap_count[nbitmap], miss[max_miss][2]
 *   then every column buffer at the offset the program gives.
 * Arenas are self-describing so the same memory travels to JS as one ArrayBuffer.
 *
 * Pure C, no N-API: retis_bpf.c wraps it. Single writer: one thread decodes into a decoder at a
 * time (the reader thread, or the JS thread in synchronous mode); only lookup entries are added
 * concurrently (by JS), published with release stores.
 */
#ifndef RETIS_DECODER_H
#define RETIS_DECODER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEC_PLAN_MAGIC 0x52444332u /* "RDC2": bump with any change of the program format */
#define DEC_PLAN_HDR 16            /* u32 words before the column descriptors */
#define DEC_MAX_RAW_OPS 32         /* raw block ops per program */
#define DEC_RAW_ENTRY_HDR 8        /* u32 row, u16 tag, u16 length */
#define DEC_VAR_WORDS 4            /* offsets_off, bytes_off, bytes_cap, max_per_record */
#define DEC_OP_WORDS 13
#define DEC_NONE 0xffffffffu
#define DEC_MAX_LOOKUP_TABLES 4
#define DEC_LOOKUP_SLOTS 2
#define DEC_LOOKUP_CAP 4096   /* entries per table (open addressing: 2x slots) */
#define DEC_STR_MAX 255       /* longest probe/lookup string kept */

/* Operations (the TS side mirrors these numbers in capture/columns-plan.ts). */
enum dec_op_kind {
	DOP_COPY = 0,    /* internal: a DOP_SCALAR that is a plain little-endian copy of dsize bytes */
	DOP_VALID = 1,   /* set bitmap[valid] */
	DOP_SCALAR = 2,  /* dst[row] = (read(src) >> shift) & mask */
	DOP_BOOL = 3,    /* bit row of bitmap dst = ((read(src) >> shift) & mask) != 0 */
	DOP_CSTR = 4,    /* var dst = char[aux] at src, up to the first NUL */
	DOP_BYTES = 5,   /* var dst = bytes at src + align8(read(aux2)) if sections & shift, length read(aux) */
	DOP_PROBESTR = 6,/* var dst = string aux of the record's probe */
	DOP_SEQ = 7,     /* u64 dst[row] = ++seq */
	DOP_LOOKUP = 8,  /* var dst = slot aux2 of table aux's entry for read(src); valid set if present */
	DOP_RAW = 9,     /* raw area entry { row, tag dst, dsize } + dsize bytes of the record from the
			  * offset of the probe's offset slot src (stype 0; skipped when the probe has
			  * none or the block does not fit), or the last dsize bytes of the record
			  * (stype 1; past the variable parts, else the record is malformed) */
};

/* One operation: run when (sections & mask) == want and (any == 0 || (sections & any)). */
struct dec_op {
	uint32_t kind, mask, want, any;
	uint32_t src;   /* record offset */
	uint32_t stype; /* size of the source field (1, 2, 4, 8); | 0x100: big endian */
	uint32_t dst;   /* arena offset of a fixed column's data, var column index, or bitmap index */
	uint32_t dsize; /* element size of a fixed column */
	uint32_t shift, bmask;
	uint32_t valid; /* bitmap index set when the op runs, or DEC_NONE */
	uint32_t aux, aux2;
};

/* Operations with the same condition, run after one test (dec_new groups them). */
struct dec_group {
	uint32_t mask, want, any;
	uint32_t first, count;
	uint32_t ncopy; /* the first ncopy ops are DOP_COPY without validity: a branch-free loop */
};

struct dec_var {
	uint32_t offsets_off, bytes_off, bytes_cap, max_per_record;
};

struct dec_str {
	uint8_t len;
	uint8_t present;
	uint8_t b[DEC_STR_MAX];
};

struct dec_probe {
	bool valid;
	uint32_t nstr;
	struct dec_str *str;
};

struct dec_lookup_entry {
	uint32_t key;
	struct dec_str slot[DEC_LOOKUP_SLOTS];
};

struct dec_lookup {
	/* Open addressing over entry indices + 1 (0: empty). Written by one thread (JS), read by the
	 * decoding thread: an index is published only after its entry is complete. */
	uint32_t index[DEC_LOOKUP_CAP * 2];
	struct dec_lookup_entry entries[DEC_LOOKUP_CAP];
	uint32_t n;
};

struct decoder {
	uint32_t capacity, arena_bytes, header_bytes;
	uint32_t nvar, nbitmap, nops;
	uint32_t min_size, probe_off, sections_off, max_miss;
	struct dec_var *vars;
	uint32_t *bitmaps; /* arena offsets */
	struct dec_op *ops;
	struct dec_group *groups;
	uint32_t ngroups;
	uint32_t *bytes_ops; /* indices of DOP_BYTES ops: bounds checked before anything is written */
	uint32_t nbytes_ops;
	/* DOP_RAW ops (rare blocks, decoded in JS from the raw area): kept out of the groups. */
	struct dec_op *raw_ops;
	uint32_t nraw_ops;
	uint32_t raw_off, raw_cap;
	uint32_t nprobe_slots, nprobe_tab;
	uint32_t *probe_offs; /* [probe id * nprobe_slots + slot]: record offset, or DEC_NONE */
	struct dec_probe *probes;
	uint32_t nprobes;
	struct dec_lookup *lookups[DEC_MAX_LOOKUP_TABLES];
	uint64_t max_events;
	/* Counters: written by the decoding thread only, read anywhere (relaxed atomics). */
	uint64_t seq, events, ignored, malformed;
	uint64_t *per_probe;
};

/* Header word indices. */
#define DEC_H_ROWS 0
#define DEC_H_MISSES 1
#define DEC_H_VARPOS 2
static inline uint32_t dec_h_count(const struct decoder *d) { return DEC_H_VARPOS + d->nvar; }
static inline uint32_t dec_h_miss(const struct decoder *d) { return DEC_H_VARPOS + d->nvar + d->nbitmap; }
/* Bytes used in the raw area (after the miss list). */
static inline uint32_t dec_h_raw(const struct decoder *d) { return DEC_H_VARPOS + d->nvar + d->nbitmap + 2 * d->max_miss; }

static inline uint64_t dec_load(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_RELAXED); }
static inline void dec_inc(uint64_t *p) { __atomic_store_n(p, *p + 1, __ATOMIC_RELAXED); }

static inline uint64_t dec_read(const uint8_t *rec, uint32_t off, uint32_t stype)
{
	uint64_t v = 0;
	switch (stype & 0xff) {
	case 1: v = rec[off]; break;
	case 2: { uint16_t x; memcpy(&x, rec + off, 2); v = stype & 0x100 ? __builtin_bswap16(x) : x; break; }
	case 4: { uint32_t x; memcpy(&x, rec + off, 4); v = stype & 0x100 ? __builtin_bswap32(x) : x; break; }
	case 8: { uint64_t x; memcpy(&x, rec + off, 8); v = stype & 0x100 ? __builtin_bswap64(x) : x; break; }
	}
	return v;
}

static inline void dec_set_bit(const struct decoder *d, uint8_t *arena, uint32_t bm, uint32_t row)
{
	uint8_t *b = arena + d->bitmaps[bm] + (row >> 3);
	uint8_t bit = (uint8_t)(1u << (row & 7));
	if (!(*b & bit)) {
		*b |= bit;
		((uint32_t *)arena)[dec_h_count(d) + bm]++;
	}
}

/* Start an empty batch in `arena`: header and bitmaps zeroed, first offsets 0. */
static inline void dec_arena_init(const struct decoder *d, uint8_t *arena)
{
	memset(arena, 0, d->header_bytes);
	for (uint32_t i = 0; i < d->nbitmap; i++)
		memset(arena + d->bitmaps[i], 0, (d->capacity + 7) / 8);
	for (uint32_t i = 0; i < d->nvar; i++)
		memset(arena + d->vars[i].offsets_off, 0, 4);
}

static inline const struct dec_lookup_entry *dec_lookup_find(const struct dec_lookup *t, uint32_t key)
{
	uint32_t mask = DEC_LOOKUP_CAP * 2 - 1;
	for (uint32_t h = (key * 2654435761u) & mask, n = 0; n <= mask; h = (h + 1) & mask, n++) {
		uint32_t i = __atomic_load_n(&t->index[h], __ATOMIC_ACQUIRE);
		if (i == 0)
			return NULL;
		if (t->entries[i - 1].key == key)
			return &t->entries[i - 1];
	}
	return NULL;
}

/* Add (or keep) an entry; JS thread. Returns false when the table is full. */
static inline bool dec_lookup_add(struct dec_lookup *t, uint32_t key, const struct dec_str *slots)
{
	uint32_t mask = DEC_LOOKUP_CAP * 2 - 1;
	if (dec_lookup_find(t, key))
		return true;
	if (t->n >= DEC_LOOKUP_CAP)
		return false;
	struct dec_lookup_entry *e = &t->entries[t->n];
	e->key = key;
	memcpy(e->slot, slots, sizeof(e->slot));
	for (uint32_t h = (key * 2654435761u) & mask;; h = (h + 1) & mask) {
		if (t->index[h] == 0) {
			t->n++;
			__atomic_store_n(&t->index[h], t->n, __ATOMIC_RELEASE);
			return true;
		}
	}
}

static inline void dec_var_put(const struct decoder *d, uint8_t *arena, uint32_t v, const uint8_t *src, uint32_t n)
{
	uint32_t *pos = &((uint32_t *)arena)[DEC_H_VARPOS + v];
	memcpy(arena + d->vars[v].bytes_off + *pos, src, n);
	*pos += n;
}

static inline void dec_miss(const struct decoder *d, uint8_t *arena, uint32_t table, uint32_t key)
{
	uint32_t *h = (uint32_t *)arena;
	uint32_t *list = h + dec_h_miss(d);
	for (uint32_t i = 0; i < h[DEC_H_MISSES] && i < d->max_miss; i++)
		if (list[i * 2] == table && list[i * 2 + 1] == key)
			return;
	/* Counted even past max_miss: JS then rebuilds from every row, not just the listed keys. */
	if (h[DEC_H_MISSES] < d->max_miss) {
		list[h[DEC_H_MISSES] * 2] = table;
		list[h[DEC_H_MISSES] * 2 + 1] = key;
	}
	h[DEC_H_MISSES]++;
}

static inline bool dec_cond(const struct dec_op *o, uint32_t sections)
{
	return (sections & o->mask) == o->want && (o->any == 0 || (sections & o->any) != 0);
}

/* Where the variable part of a DOP_BYTES op starts, and its length. */
static inline void dec_bytes_span(const struct dec_op *o, const uint8_t *rec, uint32_t sections, uint32_t *start, uint32_t *len)
{
	uint32_t s = o->src;
	if (o->aux2 != DEC_NONE && (sections & o->shift))
		s += ((uint32_t)dec_read(rec, o->aux2, o->stype) + 7) & ~7u;
	*start = s;
	*len = (uint32_t)dec_read(rec, o->aux, o->stype);
}

enum dec_result { DEC_OK = 0, DEC_FULL = 1 };

/*
 * Decode one record into the arena. DEC_FULL: the arena cannot take it (nothing written: hand the
 * arena over and retry on a fresh one). Records past max_events are counted as ignored, records
 * with an unknown probe id, too short, or with variable parts past their end as malformed.
 */
static inline enum dec_result dec_record(struct decoder *d, uint8_t *arena, const uint8_t *rec, uint32_t size)
{
	uint32_t *h = (uint32_t *)arena;
	if (d->events >= d->max_events) {
		dec_inc(&d->ignored);
		return DEC_OK;
	}
	uint32_t probe_id = size >= d->min_size ? (uint32_t)dec_read(rec, d->probe_off, 4) : DEC_NONE;
	if (probe_id >= d->nprobes || !d->probes[probe_id].valid) {
		dec_inc(&d->malformed);
		return DEC_OK;
	}
	uint32_t sections = (uint32_t)dec_read(rec, d->sections_off, 4);
	uint64_t vend = d->min_size; /* end of the variable parts */
	for (uint32_t k = 0; k < d->nbytes_ops; k++) {
		const struct dec_op *o = &d->ops[d->bytes_ops[k]];
		if (!dec_cond(o, sections))
			continue;
		uint32_t start, len;
		dec_bytes_span(o, rec, sections, &start, &len);
		if ((uint64_t)start + len > size || len > d->vars[o->dst].max_per_record) {
			dec_inc(&d->malformed);
			return DEC_OK;
		}
		if ((uint64_t)start + len > vend)
			vend = (uint64_t)start + len;
	}
	/* Raw blocks (rare sections): which ones this record has, and where. */
	uint32_t raw_run = 0, raw_need = 0;
	uint32_t raw_at[DEC_MAX_RAW_OPS];
	for (uint32_t k = 0; k < d->nraw_ops; k++) {
		const struct dec_op *o = &d->raw_ops[k];
		if (!dec_cond(o, sections))
			continue;
		uint32_t at;
		if (o->stype == 1) {
			if (size < o->dsize || vend > size - o->dsize) {
				dec_inc(&d->malformed);
				return DEC_OK;
			}
			at = size - o->dsize;
		} else {
			at = probe_id < d->nprobe_tab ? d->probe_offs[probe_id * d->nprobe_slots + o->src] : DEC_NONE;
			if (at == DEC_NONE || (uint64_t)at + o->dsize > size)
				continue;
		}
		raw_at[k] = at;
		raw_run |= 1u << k;
		raw_need += DEC_RAW_ENTRY_HDR + ((o->dsize + 7) & ~7u);
	}
	uint32_t row = h[DEC_H_ROWS];
	if (row >= d->capacity)
		return DEC_FULL;
	for (uint32_t v = 0; v < d->nvar; v++)
		if (h[DEC_H_VARPOS + v] + d->vars[v].max_per_record > d->vars[v].bytes_cap)
			return DEC_FULL;
	if (raw_need && h[dec_h_raw(d)] + raw_need > d->raw_cap)
		return DEC_FULL;

	const struct dec_probe *probe = &d->probes[probe_id];
	for (uint32_t g = 0; g < d->ngroups; g++) {
		const struct dec_group *gr = &d->groups[g];
		if ((sections & gr->mask) != gr->want || (gr->any != 0 && (sections & gr->any) == 0))
			continue;
		uint32_t i = gr->first, e = gr->first + gr->count;
		/* 8-byte moves whatever the width: columns are padded by 8 bytes and fields lie 8
		 * bytes before the header's end (checked in dec_new), and rows are filled in order,
		 * so the extra bytes land on later rows of the same column, rewritten then. */
		for (uint32_t c = i + gr->ncopy; i < c; i++) {
			const struct dec_op *o = &d->ops[i];
			uint64_t x;
			memcpy(&x, rec + o->src, 8);
			memcpy(arena + o->dst + (size_t)row * o->dsize, &x, 8);
		}
		for (; i < e; i++) {
		const struct dec_op *o = &d->ops[i];
		switch (o->kind) {
		case DOP_COPY: {
			uint8_t *p = arena + o->dst + (size_t)row * o->dsize;
			const uint8_t *q = rec + o->src;
			switch (o->dsize) {
			case 1: *p = *q; break;
			case 2: memcpy(p, q, 2); break;
			case 4: memcpy(p, q, 4); break;
			default: memcpy(p, q, 8); break;
			}
			break;
		}
		case DOP_VALID:
			break;
		case DOP_SCALAR: {
			uint64_t v = dec_read(rec, o->src, o->stype) >> o->shift;
			if (o->bmask)
				v &= o->bmask;
			uint8_t *p = arena + o->dst + (size_t)row * o->dsize;
			switch (o->dsize) {
			case 1: *p = (uint8_t)v; break;
			case 2: { uint16_t x = (uint16_t)v; memcpy(p, &x, 2); break; }
			case 4: { uint32_t x = (uint32_t)v; memcpy(p, &x, 4); break; }
			case 8: memcpy(p, &v, 8); break;
			}
			break;
		}
		case DOP_BOOL: {
			uint64_t v = dec_read(rec, o->src, o->stype) >> o->shift;
			if (o->bmask)
				v &= o->bmask;
			if (v)
				dec_set_bit(d, arena, o->dst, row);
			break;
		}
		case DOP_CSTR: {
			const uint8_t *s = rec + o->src;
			const uint8_t *nul = memchr(s, 0, o->aux);
			dec_var_put(d, arena, o->dst, s, nul ? (uint32_t)(nul - s) : o->aux);
			break;
		}
		case DOP_BYTES: {
			uint32_t start, len;
			dec_bytes_span(o, rec, sections, &start, &len);
			dec_var_put(d, arena, o->dst, rec + start, len);
			break;
		}
		case DOP_PROBESTR:
			if (o->aux < probe->nstr)
				dec_var_put(d, arena, o->dst, probe->str[o->aux].b, probe->str[o->aux].len);
			break;
		case DOP_SEQ: {
			uint64_t s = d->seq + 1;
			__atomic_store_n(&d->seq, s, __ATOMIC_RELAXED);
			memcpy(arena + o->dst + (size_t)row * 8, &s, 8);
			break;
		}
		case DOP_LOOKUP: {
			uint32_t key = (uint32_t)dec_read(rec, o->src, o->stype);
			const struct dec_lookup *t = o->aux < DEC_MAX_LOOKUP_TABLES ? d->lookups[o->aux] : NULL;
			const struct dec_lookup_entry *e = t ? dec_lookup_find(t, key) : NULL;
			if (!e) {
				dec_miss(d, arena, o->aux, key);
				continue; /* JS rebuilds this column for the batch; validity left to it */
			}
			const struct dec_str *s = &e->slot[o->aux2 < DEC_LOOKUP_SLOTS ? o->aux2 : 0];
			if (!s->present)
				continue;
			dec_var_put(d, arena, o->dst, s->b, s->len);
			break;
		}
		}
		if (o->valid != DEC_NONE)
			dec_set_bit(d, arena, o->valid, row);
		}
	}
	for (uint32_t v = 0; v < d->nvar; v++) {
		int32_t end = (int32_t)h[DEC_H_VARPOS + v];
		memcpy(arena + d->vars[v].offsets_off + (size_t)(row + 1) * 4, &end, 4);
	}
	if (raw_run) {
		uint32_t *pos = &h[dec_h_raw(d)];
		for (uint32_t k = 0; k < d->nraw_ops; k++) {
			if (!(raw_run & (1u << k)))
				continue;
			const struct dec_op *o = &d->raw_ops[k];
			uint8_t *e = arena + d->raw_off + *pos;
			uint16_t tag = (uint16_t)o->dst, len = (uint16_t)o->dsize;
			memcpy(e, &row, 4);
			memcpy(e + 4, &tag, 2);
			memcpy(e + 6, &len, 2);
			memcpy(e + DEC_RAW_ENTRY_HDR, rec + raw_at[k], o->dsize);
			*pos += DEC_RAW_ENTRY_HDR + ((o->dsize + 7) & ~7u);
		}
	}
	h[DEC_H_ROWS] = row + 1;
	dec_inc(&d->events);
	dec_inc(&d->per_probe[probe_id]);
	return DEC_OK;
}

static inline void dec_free(struct decoder *d)
{
	if (!d)
		return;
	for (uint32_t i = 0; i < d->nprobes; i++)
		free(d->probes[i].str);
	free(d->probes);
	for (int i = 0; i < DEC_MAX_LOOKUP_TABLES; i++)
		free(d->lookups[i]);
	free(d->vars);
	free(d->bitmaps);
	free(d->ops);
	free(d->groups);
	free(d->bytes_ops);
	free(d->raw_ops);
	free(d->probe_offs);
	free(d->per_probe);
	free(d);
}

/*
 * Build a decoder from a program (u32 words, see capture/columns-plan.ts):
 *   magic, capacity, arena_bytes, header_bytes, nvar, nbitmap, nops, min_size, probe_off,
 *   sections_off, max_miss, raw_off, raw_cap, nprobe_slots, nprobe_tab, reserved; then
 *   nvar * 4 words, nbitmap words, nops * 13 words, nprobe_tab * nprobe_slots words (per-probe
 *   record offsets of the raw blocks, DEC_NONE: none).
 * Returns NULL with *why set when the program is inconsistent (offsets past the arena...).
 */
static inline struct decoder *dec_new(const uint32_t *w, size_t nwords, const char **why)
{
	struct decoder *d;
	*why = "program too short";
	if (nwords < DEC_PLAN_HDR)
		return NULL;
	*why = "program format mismatch (rebuild: npm run build:bpf)";
	if (w[0] != DEC_PLAN_MAGIC)
		return NULL;
	d = calloc(1, sizeof(*d));
	*why = "out of memory";
	if (!d)
		return NULL;
	d->capacity = w[1];
	d->arena_bytes = w[2];
	d->header_bytes = w[3];
	d->nvar = w[4];
	d->nbitmap = w[5];
	d->nops = w[6];
	d->min_size = w[7];
	d->probe_off = w[8];
	d->sections_off = w[9];
	d->max_miss = w[10];
	d->raw_off = w[11];
	d->raw_cap = w[12];
	d->nprobe_slots = w[13];
	d->nprobe_tab = w[14];
	d->max_events = UINT64_MAX;
	size_t need = DEC_PLAN_HDR + (size_t)d->nvar * DEC_VAR_WORDS + d->nbitmap + (size_t)d->nops * DEC_OP_WORDS +
		      (size_t)d->nprobe_slots * d->nprobe_tab;
	*why = "program length does not match its counts";
	if (nwords != need || d->capacity == 0)
		goto bad;
	*why = "arena header too small";
	if ((size_t)d->header_bytes < (size_t)(DEC_H_VARPOS + d->nvar + d->nbitmap + 2 * d->max_miss + 1) * 4)
		goto bad;
	*why = "raw area outside the arena";
	if (d->raw_cap && (d->raw_off < d->header_bytes || (uint64_t)d->raw_off + d->raw_cap > d->arena_bytes))
		goto bad;
	*why = "out of memory";
	d->vars = calloc(d->nvar ? d->nvar : 1, sizeof(*d->vars));
	d->bitmaps = calloc(d->nbitmap ? d->nbitmap : 1, sizeof(*d->bitmaps));
	d->ops = calloc(d->nops ? d->nops : 1, sizeof(*d->ops));
	if (!d->vars || !d->bitmaps || !d->ops)
		goto bad;
	const uint32_t *p = w + DEC_PLAN_HDR;
	uint64_t cap = d->capacity, arena = d->arena_bytes;
	*why = "a column lies outside the arena";
	for (uint32_t i = 0; i < d->nvar; i++, p += DEC_VAR_WORDS) {
		d->vars[i] = (struct dec_var){ p[0], p[1], p[2], p[3] };
		if (p[0] < d->header_bytes || (uint64_t)p[0] + (cap + 1) * 4 > arena || p[1] < d->header_bytes ||
		    (uint64_t)p[1] + p[2] > arena || p[3] > p[2] || (p[0] & 3))
			goto bad;
	}
	for (uint32_t i = 0; i < d->nbitmap; i++, p++) {
		d->bitmaps[i] = *p;
		if (*p < d->header_bytes || (uint64_t)*p + (cap + 7) / 8 > arena)
			goto bad;
	}
	for (uint32_t i = 0; i < d->nops; i++, p += DEC_OP_WORDS) {
		struct dec_op *o = &d->ops[i];
		*o = (struct dec_op){ p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], p[10], p[11], p[12] };
		uint32_t sz = o->stype & 0xff;
		*why = "bad operation";
		if (o->valid != DEC_NONE && o->valid >= d->nbitmap)
			goto bad;
		switch (o->kind) {
		case DOP_VALID:
			break;
		case DOP_SCALAR:
			if ((sz != 1 && sz != 2 && sz != 4 && sz != 8) || o->src + sz > d->min_size || o->shift > 63 ||
			    (o->dsize != 1 && o->dsize != 2 && o->dsize != 4 && o->dsize != 8) ||
			    o->dst < d->header_bytes || (uint64_t)o->dst + cap * o->dsize > arena)
				goto bad;
			break;
		case DOP_BOOL:
			if ((sz != 1 && sz != 2 && sz != 4 && sz != 8) || o->src + sz > d->min_size || o->shift > 63 || o->dst >= d->nbitmap)
				goto bad;
			break;
		case DOP_CSTR:
			if (o->dst >= d->nvar || o->src + o->aux > d->min_size || o->aux > d->vars[o->dst].max_per_record)
				goto bad;
			break;
		case DOP_BYTES:
			if (o->dst >= d->nvar || (sz != 1 && sz != 2 && sz != 4) || o->aux + sz > d->min_size ||
			    (o->aux2 != DEC_NONE && o->aux2 + sz > d->min_size))
				goto bad;
			break;
		case DOP_PROBESTR:
			if (o->dst >= d->nvar || DEC_STR_MAX > d->vars[o->dst].max_per_record)
				goto bad;
			break;
		case DOP_SEQ:
			if (o->dst < d->header_bytes || (uint64_t)o->dst + cap * 8 > arena)
				goto bad;
			break;
		case DOP_RAW:
			if (o->dsize == 0 || o->dsize > 0xffff || o->dst > 0xffff || o->stype > 1 ||
			    (o->stype == 0 && o->src >= d->nprobe_slots) || d->nraw_ops >= DEC_MAX_RAW_OPS)
				goto bad;
			if (DEC_RAW_ENTRY_HDR + ((o->dsize + 7) & ~7u) > d->raw_cap) {
				*why = "raw area smaller than a block";
				goto bad;
			}
			d->nraw_ops++;
			break;
		case DOP_LOOKUP:
			if (o->dst >= d->nvar || o->aux >= DEC_MAX_LOOKUP_TABLES || o->aux2 >= DEC_LOOKUP_SLOTS ||
			    (sz != 1 && sz != 2 && sz != 4) || o->src + sz > d->min_size ||
			    DEC_STR_MAX > d->vars[o->dst].max_per_record)
				goto bad;
			if (!d->lookups[o->aux] && !(d->lookups[o->aux] = calloc(1, sizeof(struct dec_lookup)))) {
				*why = "out of memory";
				goto bad;
			}
			break;
		default:
			goto bad;
		}
	}
	/* Group ops by condition (first-seen order; ops are independent of each other), make plain
	 * copies DOP_COPY, list the DOP_BYTES ops: the per-record loop then tests each distinct
	 * condition once and dispatches mostly to one case. */
	*why = "out of memory";
	struct dec_op *sorted = calloc(d->nops ? d->nops : 1, sizeof(*sorted));
	d->groups = calloc(d->nops ? d->nops : 1, sizeof(*d->groups));
	d->bytes_ops = calloc(d->nops ? d->nops : 1, sizeof(*d->bytes_ops));
	if (!sorted || !d->groups || !d->bytes_ops) {
		free(sorted);
		goto bad;
	}
	bool *taken = calloc(d->nops ? d->nops : 1, sizeof(bool));
	d->raw_ops = calloc(d->nraw_ops ? d->nraw_ops : 1, sizeof(*d->raw_ops));
	d->probe_offs = calloc((size_t)d->nprobe_slots * d->nprobe_tab + 1, sizeof(uint32_t));
	if (!taken || !d->raw_ops || !d->probe_offs) {
		free(taken);
		free(sorted);
		goto bad;
	}
	memcpy(d->probe_offs, p, (size_t)d->nprobe_slots * d->nprobe_tab * sizeof(uint32_t));
	for (uint32_t i = 0, r = 0; i < d->nops; i++) {
		if (d->ops[i].kind == DOP_RAW) {
			d->raw_ops[r++] = d->ops[i];
			taken[i] = true;
		}
	}
	uint32_t k = 0;
	for (uint32_t i = 0; i < d->nops; i++) {
		if (taken[i])
			continue;
		struct dec_group *g = &d->groups[d->ngroups++];
		*g = (struct dec_group){ d->ops[i].mask, d->ops[i].want, d->ops[i].any, k, 0, 0 };
		for (int pass = 0; pass < 2; pass++) {
			for (uint32_t j = i; j < d->nops; j++) {
				const struct dec_op *o = &d->ops[j];
				if (taken[j] || o->mask != g->mask || o->want != g->want || o->any != g->any)
					continue;
				bool copy = o->kind == DOP_SCALAR && o->shift == 0 && o->bmask == 0 && (o->stype & 0x100) == 0 &&
					    (o->stype & 0xff) == o->dsize && o->valid == DEC_NONE && o->src + 8 <= d->min_size &&
					    (uint64_t)o->dst + d->capacity * (uint64_t)o->dsize + 8 <= d->arena_bytes;
				if (copy != (pass == 0))
					continue;
				taken[j] = true;
				sorted[k] = *o;
				if (copy) {
					sorted[k].kind = DOP_COPY;
					g->ncopy++;
				}
				if (o->kind == DOP_BYTES)
					d->bytes_ops[d->nbytes_ops++] = k;
				k++;
				g->count++;
			}
		}
	}
	free(taken);
	free(d->ops);
	d->ops = sorted;
	d->nops = k;
	if (d->probe_off + 4 > d->min_size || d->sections_off + 4 > d->min_size) {
		*why = "probe id or sections field past the record header";
		goto bad;
	}
	return d;
bad:
	dec_free(d);
	return NULL;
}

#endif /* RETIS_DECODER_H */
