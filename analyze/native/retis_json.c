// retis_json: a DuckDB table function reading Retis JSON event files (one event object per
// line) straight into DuckDB vectors, registered on the analyzer's connection.
//
//   retis_json_events(path VARCHAR, schema VARCHAR, chunk_bytes BIGINT, checks VARCHAR)
//
// `schema` describes the output columns (built by analyze/load/native-json.ts from the
// model, analyze/model/schema.ts: the model stays the single definition):
//   columns  := col (';' col)*        col := name '=' type
//   type     := 'b' | 'i1'|'i2'|'i4'|'i8' | 'u1'|'u2'|'u4'|'u8' | 's' (VARCHAR, JSON string)
//             | 'x' (BLOB, from a base64 JSON string) | 'r' (VARCHAR: a JSON object's text)
//             | '{' name '=' type (',' name '=' type)* '}' | '[' type ']'
//             | 'r{' ... '}' (a raw section and its shape, walked only for the checks)
// A first column `_seq` UBIGINT is added: the record number (non-blank line) from 1, and a
// last one, `_problem`: the row's first failing shape check, `checks` (one a line,
// `struct|field,field|subject`, or `struct||message` for a struct that must be present,
// from analyze/load/validate.ts CHECKS, which problemExpr evaluates in SQL for the other readers).
//
// The function is exact or it fails: anything it does not fully understand (not JSON, a value
// of another JSON type than the column's, an integer out of range or written as a float, a
// duplicate key, a \u escape or a non-canonical number in a raw section) raises an error,
// and the loader then reads the file with DuckDB's read_json, which names the line and keeps
// today's semantics. So this file never decides a corner case differently from read_json.
//
// Parallel: the file is mmap'd and cut into newline-aligned chunks of `chunk_bytes`; each
// DuckDB thread claims chunks. DuckDB's C API has no batch index for table functions, so the
// insert cannot keep file order by itself: the record number is emitted instead, from the
// counts of records of the chunks before (see claim_chunk).
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "vendor/duckdb.h"

//// SCHEMA ////

typedef enum { K_BOOL, K_I8, K_I16, K_I32, K_I64, K_U8, K_U16, K_U32, K_U64, K_STR, K_B64, K_RAW, K_STRUCT, K_LIST } kind_t;

typedef struct node {
  kind_t kind;
  char *name;
  size_t name_len;
  int id;            // index into per-thread vector state
  bool in_list;      // below a list: validity set per element, not reset per chunk
  struct node *kids; // struct fields, or the list element (one)
  size_t nkids;
  // The key as it appears in the text, `"name"`, in two words and their masks (qlen 0:
  // longer than 16 bytes), for key_at: one masked compare instead of a loop.
  uint64_t q[2], qm[2];
  size_t qlen;
  bool tracked; // read by a shape check: set_present records it
} node_t;

typedef struct {
  const char *s;
  int next_id;
  char err[256];
} schema_parser_t;

static void free_node(node_t *n) {
  for (size_t i = 0; i < n->nkids; i++) free_node(&n->kids[i]);
  free(n->kids);
  free(n->name);
}

static bool parse_type(schema_parser_t *p, node_t *n, bool in_list);

static bool parse_field(schema_parser_t *p, node_t *n, bool in_list, const char *stops) {
  const char *eq = strchr(p->s, '=');
  if (!eq || eq == p->s || strcspn(p->s, stops) < (size_t)(eq - p->s)) {
    snprintf(p->err, sizeof p->err, "schema: expected name= at \"%.20s\"", p->s);
    return false;
  }
  n->name_len = (size_t)(eq - p->s);
  // Zero-padded by eight bytes: same_name reads names a word at a time.
  n->name = calloc(1, n->name_len + 8);
  memcpy(n->name, p->s, n->name_len);
  size_t ql = n->name_len + 2;
  if (ql <= 16) {
    char qb[16] = {0};
    qb[0] = '"';
    memcpy(qb + 1, n->name, n->name_len);
    qb[ql - 1] = '"';
    memcpy(n->q, qb, 16);
    n->qm[0] = ql >= 8 ? ~0ULL : ((uint64_t)1 << (8 * ql)) - 1;
    n->qm[1] = ql <= 8 ? 0 : ql == 16 ? ~0ULL : ((uint64_t)1 << (8 * (ql - 8))) - 1;
    n->qlen = ql;
  }
  p->s = eq + 1;
  return parse_type(p, n, in_list);
}

static bool parse_type(schema_parser_t *p, node_t *n, bool in_list) {
  n->id = p->next_id++;
  n->in_list = in_list;
  char c = *p->s;
  if (c == '{') {
    p->s++;
    n->kind = K_STRUCT;
    size_t cap = 8;
    n->kids = calloc(cap, sizeof(node_t));
    for (;;) {
      if (n->nkids == cap) {
        n->kids = realloc(n->kids, (cap *= 2) * sizeof(node_t));
        memset(n->kids + n->nkids, 0, (cap - n->nkids) * sizeof(node_t));
      }
      if (!parse_field(p, &n->kids[n->nkids++], in_list, ",}")) return false;
      if (*p->s == ',') { p->s++; continue; }
      if (*p->s == '}') { p->s++; break; }
      snprintf(p->err, sizeof p->err, "schema: expected , or } at \"%.20s\"", p->s);
      return false;
    }
    if (n->nkids > 64) {
      snprintf(p->err, sizeof p->err, "schema: struct %s has more than 64 fields", n->name ? n->name : "?");
      return false;
    }
    return true;
  }
  if (c == '[') {
    p->s++;
    n->kind = K_LIST;
    n->kids = calloc(1, sizeof(node_t));
    n->nkids = 1;
    if (!parse_type(p, &n->kids[0], true)) return false;
    if (n->kids[0].kind == K_STRUCT || n->kids[0].kind == K_LIST || n->kids[0].kind == K_RAW) {
      snprintf(p->err, sizeof p->err, "schema: only lists of scalars are supported");
      return false;
    }
    if (*p->s != ']') {
      snprintf(p->err, sizeof p->err, "schema: expected ] at \"%.20s\"", p->s);
      return false;
    }
    p->s++;
    return true;
  }
  static const struct { const char *code; kind_t kind; } scalars[] = {
      {"i1", K_I8}, {"i2", K_I16}, {"i4", K_I32}, {"i8", K_I64}, {"u1", K_U8}, {"u2", K_U16},
      {"u4", K_U32}, {"u8", K_U64}, {"b", K_BOOL}, {"s", K_STR}, {"x", K_B64}, {"r", K_RAW},
  };
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
    size_t l = strlen(scalars[i].code);
    if (strncmp(p->s, scalars[i].code, l) == 0) {
      n->kind = scalars[i].kind;
      p->s += l;
      // r{...}: a raw section's shape, walked only to see which fields are present (checks).
      if (n->kind == K_RAW && *p->s == '{') {
        node_t shape = {0};
        if (!parse_type(p, &shape, in_list)) {
          free_node(&shape);
          return false;
        }
        n->kids = shape.kids;
        n->nkids = shape.nkids;
        free(shape.name);
      }
      return true;
    }
  }
  snprintf(p->err, sizeof p->err, "schema: unknown type at \"%.20s\"", p->s);
  return false;
}

static duckdb_logical_type logical_type(const node_t *n) {
  switch (n->kind) {
  case K_BOOL: return duckdb_create_logical_type(DUCKDB_TYPE_BOOLEAN);
  case K_I8: return duckdb_create_logical_type(DUCKDB_TYPE_TINYINT);
  case K_I16: return duckdb_create_logical_type(DUCKDB_TYPE_SMALLINT);
  case K_I32: return duckdb_create_logical_type(DUCKDB_TYPE_INTEGER);
  case K_I64: return duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
  case K_U8: return duckdb_create_logical_type(DUCKDB_TYPE_UTINYINT);
  case K_U16: return duckdb_create_logical_type(DUCKDB_TYPE_USMALLINT);
  case K_U32: return duckdb_create_logical_type(DUCKDB_TYPE_UINTEGER);
  case K_U64: return duckdb_create_logical_type(DUCKDB_TYPE_UBIGINT);
  case K_STR: case K_RAW: return duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  case K_B64: return duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
  case K_LIST: {
    duckdb_logical_type child = logical_type(&n->kids[0]);
    duckdb_logical_type t = duckdb_create_list_type(child);
    duckdb_destroy_logical_type(&child);
    return t;
  }
  case K_STRUCT: {
    duckdb_logical_type types[64];
    const char *names[64];
    for (size_t i = 0; i < n->nkids; i++) {
      types[i] = logical_type(&n->kids[i]);
      names[i] = n->kids[i].name;
    }
    duckdb_logical_type t = duckdb_create_struct_type(types, names, n->nkids);
    for (size_t i = 0; i < n->nkids; i++) duckdb_destroy_logical_type(&types[i]);
    return t;
  }
  }
  return NULL;
}

//// BIND / INIT ////

typedef struct {
  size_t start, end; // byte range, newline-aligned
  // Records in the chunk + 1, published by the thread that claims it (0: not counted yet).
  _Atomic uint64_t counted;
} chunk_t;

/** A shape check (analyze/load/validate.ts CHECKS): `fields` of a present `struct`, or `struct` itself. */
typedef struct {
  int struct_id;
  int *field_ids;
  char **field_names;
  size_t nfields; // 0: a problem when the struct is absent (message as is)
  char *message;  // "<subject>" or the whole message when nfields == 0
  uint64_t *need; // the field ids as a bit set over the nodes (one test per word per row)
  size_t w0, w1;  // the words of `need` that are not zero: [w0, w1)
} check_t;

typedef struct {
  char *path;
  check_t *checks;
  size_t nchecks;
  const char *data; // the mmap'd file (NULL when empty)
  size_t size;
  node_t root;      // a struct: the columns after _seq
  int nnodes;
  size_t chunk_bytes;
} bind_t;

typedef struct {
  chunk_t *chunks;
  size_t nchunks;
  atomic_size_t next;
} global_t;

typedef struct {
  duckdb_vector v;
  void *data;
  // Where set_valid writes: our own mask (local_t.masks) for a column's vector, copied to
  // DuckDB's only when some row is NULL (flush_validity); DuckDB's for list elements.
  uint64_t *validity;
} vstate_t;

typedef struct {
  const bind_t *b;
  global_t *g;
  const char *p, *end; // cursor inside the current chunk, its end
  uint64_t record;     // record number of the next record
  size_t counted_to;   // claim_chunk: chunks [0, counted_to) are summed in `before`
  uint64_t before;     //   their records
  bool have_chunk;
  vstate_t *vs;
  uint64_t *present;   // per node: a non-null value in the current row (for the checks)
  struct {
    const char *p;
    size_t n;
  } intern[256];       // put_file_string: recent short strings, by hash
  uint64_t *masks;     // per node, one vector's validity (see vstate_t)
  uint64_t *probmask;  // the same for `_problem`
  char *buf;           // scratch for decoded strings
  char b64[256];       // decoded base64 (packets), longer ones in a heap buffer
  size_t buf_cap;
  char err[512];
} local_t;

static void destroy_bind(void *ptr) {
  bind_t *b = ptr;
  for (size_t i = 0; i < b->nchecks; i++) {
    for (size_t j = 0; j < b->checks[i].nfields; j++) free(b->checks[i].field_names[j]);
    free(b->checks[i].field_names);
    free(b->checks[i].field_ids);
    free(b->checks[i].message);
    free(b->checks[i].need);
  }
  free(b->checks);
  if (b->data) munmap((void *)b->data, b->size);
  free_node(&b->root);
  free(b->path);
  free(b);
}

/** Node of a dotted path below `from` (section names hold '-', never '.'), or NULL. */
static const node_t *resolve(const node_t *from, const char *path, size_t len) {
  const node_t *n = from;
  while (len > 0) {
    const char *dot = memchr(path, '.', len);
    size_t part = dot ? (size_t)(dot - path) : len;
    const node_t *next = NULL;
    for (size_t i = 0; i < n->nkids; i++)
      if (n->kids[i].name_len == part && memcmp(n->kids[i].name, path, part) == 0) next = &n->kids[i];
    if (!next) return NULL;
    n = next;
    path += part + (dot ? 1 : 0);
    len -= part + (dot ? 1 : 0);
  }
  return n;
}

/** Checks, one a line: struct|field,field,...|subject (no fields: message when struct absent). */
static bool parse_checks(bind_t *b, const char *text, char *err, size_t errlen) {
  size_t cap = 8;
  b->checks = calloc(cap, sizeof(check_t));
  while (*text) {
    const char *eol = strchr(text, '\n');
    size_t len = eol ? (size_t)(eol - text) : strlen(text);
    const char *bar1 = memchr(text, '|', len);
    const char *bar2 = bar1 ? memchr(bar1 + 1, '|', len - (size_t)(bar1 + 1 - text)) : NULL;
    if (!bar2) {
      snprintf(err, errlen, "checks: bad line \"%.*s\"", (int)len, text);
      return false;
    }
    if (b->nchecks == cap) b->checks = realloc(b->checks, (cap *= 2) * sizeof(check_t));
    check_t *c = &b->checks[b->nchecks++];
    memset(c, 0, sizeof *c);
    const node_t *st = resolve(&b->root, text, (size_t)(bar1 - text));
    if (!st) {
      snprintf(err, errlen, "checks: no column \"%.*s\"", (int)(bar1 - text), text);
      return false;
    }
    c->struct_id = st->id;
    ((node_t *)st)->tracked = true;
    c->message = strndup(bar2 + 1, len - (size_t)(bar2 + 1 - text));
    const char *f = bar1 + 1;
    size_t fcap = 16;
    c->field_ids = calloc(fcap, sizeof(int));
    c->field_names = calloc(fcap, sizeof(char *));
    while (f < bar2) {
      const char *comma = memchr(f, ',', (size_t)(bar2 - f));
      const char *fe = comma ? comma : bar2;
      const node_t *fn = resolve(st, f, (size_t)(fe - f));
      if (!fn) {
        snprintf(err, errlen, "checks: no field \"%.*s\"", (int)(fe - f), f);
        return false;
      }
      if (c->nfields == fcap) {
        c->field_ids = realloc(c->field_ids, (fcap *= 2) * sizeof(int));
        c->field_names = realloc(c->field_names, fcap * sizeof(char *));
      }
      if (!c->need) c->need = calloc(((size_t)b->nnodes + 63) / 64, sizeof(uint64_t));
      c->need[fn->id / 64] |= (uint64_t)1 << (fn->id % 64);
      ((node_t *)fn)->tracked = true;
      size_t w = (size_t)fn->id / 64;
      if (c->nfields == 0 || w < c->w0) c->w0 = w;
      if (c->nfields == 0 || w + 1 > c->w1) c->w1 = w + 1;
      c->field_ids[c->nfields] = fn->id;
      c->field_names[c->nfields++] = strndup(f, (size_t)(fe - f));
      f = fe + 1;
    }
    text += len + (eol ? 1 : 0);
  }
  return true;
}

static void bind(duckdb_bind_info info) {
  duckdb_value vpath = duckdb_bind_get_parameter(info, 0);
  duckdb_value vschema = duckdb_bind_get_parameter(info, 1);
  duckdb_value vchunk = duckdb_bind_get_parameter(info, 2);
  duckdb_value vchecks = duckdb_bind_get_parameter(info, 3);
  char *checks = vchecks ? duckdb_get_varchar(vchecks) : NULL;
  duckdb_destroy_value(&vchecks);
  char *path = vpath ? duckdb_get_varchar(vpath) : NULL;
  char *schema = vschema ? duckdb_get_varchar(vschema) : NULL;
  int64_t chunk = vchunk ? duckdb_get_int64(vchunk) : 0;
  duckdb_destroy_value(&vpath);
  duckdb_destroy_value(&vschema);
  duckdb_destroy_value(&vchunk);
  bind_t *b = calloc(1, sizeof *b);
  char err[512] = "";
  if (!path || !schema || chunk < 1 || !checks) {
    snprintf(err, sizeof err, "retis_json_events(path, schema, chunk_bytes, checks): bad arguments");
    goto fail;
  }
  b->path = strdup(path);
  b->chunk_bytes = (size_t)chunk;
  schema_parser_t sp = {.s = schema, .next_id = 0};
  b->root.kind = K_STRUCT;
  b->root.id = sp.next_id++;
  size_t cap = 32;
  b->root.kids = calloc(cap, sizeof(node_t));
  for (;;) {
    if (b->root.nkids == cap) {
      b->root.kids = realloc(b->root.kids, (cap *= 2) * sizeof(node_t));
      memset(b->root.kids + b->root.nkids, 0, (cap - b->root.nkids) * sizeof(node_t));
    }
    if (!parse_field(&sp, &b->root.kids[b->root.nkids++], false, ";")) {
      snprintf(err, sizeof err, "%s", sp.err);
      goto fail;
    }
    if (*sp.s == ';') { sp.s++; continue; }
    if (*sp.s == '\0') break;
    snprintf(err, sizeof err, "schema: expected ; at \"%.20s\"", sp.s);
    goto fail;
  }
  if (b->root.nkids > 64) {
    snprintf(err, sizeof err, "schema: more than 64 columns");
    goto fail;
  }
  b->nnodes = sp.next_id;
  if (!parse_checks(b, checks, err, sizeof err)) goto fail;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    snprintf(err, sizeof err, "%s: %s", path, strerror(errno));
    goto fail;
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    snprintf(err, sizeof err, "%s: %s", path, strerror(errno));
    close(fd);
    goto fail;
  }
  b->size = (size_t)st.st_size;
  if (b->size > 0) {
    void *m = mmap(NULL, b->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (m == MAP_FAILED) {
      snprintf(err, sizeof err, "%s: mmap: %s", path, strerror(errno));
      close(fd);
      goto fail;
    }
    madvise(m, b->size, MADV_SEQUENTIAL);
    b->data = m;
  }
  close(fd);
  duckdb_logical_type ubig = duckdb_create_logical_type(DUCKDB_TYPE_UBIGINT);
  duckdb_bind_add_result_column(info, "_seq", ubig);
  duckdb_destroy_logical_type(&ubig);
  for (size_t i = 0; i < b->root.nkids; i++) {
    duckdb_logical_type t = logical_type(&b->root.kids[i]);
    duckdb_bind_add_result_column(info, b->root.kids[i].name, t);
    duckdb_destroy_logical_type(&t);
  }
  duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_bind_add_result_column(info, "_problem", varchar);
  duckdb_destroy_logical_type(&varchar);
  duckdb_bind_set_bind_data(info, b, destroy_bind);
  duckdb_free(path);
  duckdb_free(schema);
  duckdb_free(checks);
  return;
fail:
  if (path) duckdb_free(path);
  if (schema) duckdb_free(schema);
  if (checks) duckdb_free(checks);
  destroy_bind(b);
  duckdb_bind_set_error(info, err);
}

static bool blank_line(const char *p, const char *e) {
  for (; p < e; p++)
    if (*p != ' ' && *p != '\t' && *p != '\r') return false;
  return true;
}

static void destroy_global(void *ptr) {
  global_t *g = ptr;
  free(g->chunks);
  free(g);
}

/** Records (non-blank lines) in [p, e). */
static uint64_t count_records(const char *p, const char *e) {
  uint64_t n = 0;
  while (p < e) {
    const char *nl = memchr(p, '\n', (size_t)(e - p));
    const char *le = nl ? nl : e;
    // Almost every line starts with '{': the blank test then stops at once.
    if (!blank_line(p, le)) n++;
    p = le + 1;
  }
  return n;
}

/**
 * Cut the file at newlines; nothing is read but the bytes after each cut. Chunks are
 * `chunk_bytes`, then shrink over the last four (a quarter of what is left each, down to an
 * eighth of `chunk_bytes`), so the threads run out of work at about the same time instead of
 * one finishing a whole chunk alone. Records are counted by the thread that claims a chunk
 * (claim_chunk): counting them all here, a serial pass over the file with its page faults,
 * held both threads for 0.24 s of a 1M-event load (10% of it).
 */
static void init(duckdb_init_info info) {
  const bind_t *b = duckdb_init_get_bind_data(info);
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  global_t *g = calloc(1, sizeof *g);
  size_t min_chunk = b->chunk_bytes / 8 ? b->chunk_bytes / 8 : 1;
  size_t n = b->size / min_chunk + 2;
  if (n > b->size / b->chunk_bytes + 64) n = b->size / b->chunk_bytes + 64; // the tail adds a few
  g->chunks = calloc(n, sizeof(chunk_t));
  size_t pos = 0;
  while (pos < b->size) {
    size_t left = b->size - pos, step = b->chunk_bytes;
    if (left / 4 < step) step = left / 4 > min_chunk ? left / 4 : min_chunk;
    if (g->nchunks + 1 == n) step = left; // never more chunks than allocated
    size_t want = pos + step;
    size_t end;
    if (want >= b->size) {
      end = b->size;
    } else {
      const char *nl = memchr(b->data + want, '\n', b->size - want);
      end = nl ? (size_t)(nl - b->data) + 1 : b->size;
    }
    chunk_t *c = &g->chunks[g->nchunks++];
    c->start = pos;
    c->end = end;
    atomic_init(&c->counted, 0);
    pos = end;
  }
  atomic_init(&g->next, 0);
  if (getenv("RETIS_JSON_DEBUG")) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fprintf(stderr, "retis_json: init %.3f s, %zu chunks\n", (double)(ts.tv_sec - t0.tv_sec) + (double)(ts.tv_nsec - t0.tv_nsec) / 1e9, g->nchunks);
  }
  duckdb_init_set_init_data(info, g, destroy_global);
  duckdb_init_set_max_threads(info, g->nchunks > 0 ? g->nchunks : 1);
}

/** Words of a vector's validity mask. */
#define MASK_WORDS ((size_t)(duckdb_vector_size() + 63) / 64)

static void destroy_local(void *ptr) {
  local_t *l = ptr;
  free(l->vs);
  free(l->masks);
  free(l->probmask);
  free(l->present);
  free(l->buf);
  free(l);
}

static void local_init(duckdb_init_info info) {
  local_t *l = calloc(1, sizeof *l);
  l->b = duckdb_init_get_bind_data(info);
  l->vs = calloc((size_t)l->b->nnodes, sizeof(vstate_t));
  l->present = calloc(((size_t)l->b->nnodes + 63) / 64, sizeof(uint64_t));
  l->masks = calloc((size_t)l->b->nnodes * MASK_WORDS, sizeof(uint64_t));
  l->probmask = calloc(MASK_WORDS, sizeof(uint64_t));
  l->buf_cap = 1 << 16;
  l->buf = malloc(l->buf_cap);
  duckdb_init_set_init_data(info, l, destroy_local);
}

//// JSON ////

// Every parse function returns false with l->err set; the cursor is l->p.
#define FAIL(...) (snprintf(l->err, sizeof l->err, __VA_ARGS__), false)

/**
 * A field name (zero-padded by eight bytes, see parse_field) against `n` bytes of text, of
 * which `avail` are readable: eight bytes at a time, the tail as one masked word when the
 * text has room, else byte by byte. Beats a call to memcmp (4% of a load), and the byte loop.
 */
static inline bool same_name(const char *name, const char *text, size_t n, size_t avail) {
  size_t i = 0;
  uint64_t x, y;
  for (; i + 8 <= n; i += 8) {
    memcpy(&x, name + i, 8);
    memcpy(&y, text + i, 8);
    if (x != y) return false;
  }
  size_t r = n - i;
  if (r == 0) return true;
  if (avail - i >= 8) {
    memcpy(&x, name + i, 8);
    memcpy(&y, text + i, 8);
    return ((x ^ y) & (((uint64_t)1 << (8 * r)) - 1)) == 0;
  }
  for (; i < n; i++)
    if (name[i] != text[i]) return false;
  return true;
}

/**
 * Whether the text at p (a quote) is field h's key, closing quote included (so "skb" is not
 * taken for "skb-tracking"; names hold no quote or backslash, so the match is exact).
 */
static inline bool key_at(const node_t *h, const char *p, const char *e) {
  if (h->qlen && e - p >= 16) {
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    return (((a ^ h->q[0]) & h->qm[0]) | ((b ^ h->q[1]) & h->qm[1])) == 0;
  }
  return (size_t)(e - p) > h->name_len + 1 && p[h->name_len + 1] == '"' && same_name(h->name, p + 1, h->name_len, (size_t)(e - p - 1));
}

// Only for the nodes the checks read: a store per field for all the others was ~3% of the reader.
static inline void set_present(local_t *l, const node_t *n) {
  if (n->tracked) l->present[n->id / 64] |= (uint64_t)1 << (n->id % 64);
}
static inline bool is_present(const local_t *l, int id) { return l->present[id / 64] >> (id % 64) & 1; }

// Not '\n': an event is one line, so a newline inside a value is an error, and the parse
// finds the end of the line itself (no memchr pass over each line first). One test in the
// usual case (no whitespace: every byte after a value or ':' is above ' '). A macro, so
// parse_struct can run it on a cursor kept in a register (l->p is memory: every update a
// store and a reload).
#define SKIP_WS(p, e) \
  while ((p) < (e) && (unsigned char)*(p) <= ' ' && (*(p) == ' ' || *(p) == '\t' || *(p) == '\r')) (p)++

static inline void skip_ws(local_t *l) { SKIP_WS(l->p, l->end); }

static bool ensure_buf(local_t *l, size_t n) {
  if (n <= l->buf_cap) return true;
  size_t cap = l->buf_cap;
  while (cap < n) cap *= 2;
  char *nb = realloc(l->buf, cap);
  if (!nb) return FAIL("out of memory");
  l->buf = nb;
  l->buf_cap = cap;
  return true;
}

static bool valid_utf8(const unsigned char *s, size_t n) {
  size_t i = 0;
  while (i < n) {
    unsigned c = s[i];
    if (c < 0x80) { i++; continue; }
    size_t k;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) { k = 1; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { k = 2; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { k = 3; cp = c & 0x07; }
    else return false;
    for (size_t j = 1; j <= k; j++) {
      if (i + j >= n || (s[i + j] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (s[i + j] & 0x3f);
    }
    if ((k == 2 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (k == 3 && (cp < 0x10000 || cp > 0x10ffff))) return false;
    i += k + 1;
  }
  return true;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(local_t *l, const char *p, uint32_t *out) {
  if (l->end - p < 4) return FAIL("truncated \\u escape");
  uint32_t v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(p[i]);
    if (h < 0) return FAIL("bad \\u escape");
    v = (v << 4) | (uint32_t)h;
  }
  *out = v;
  return true;
}

/**
 * A JSON string at l->p (the opening quote): decoded into *out and *len (pointing into the file
 * when it has no escape, else into l->buf). `raw_escapes` counts escapes whose re-serialisation
 * by read_json differs from the text (\u, \/), for raw sections.
 */
static bool parse_string(local_t *l, const char **out, size_t *len, bool *had_escape, bool *non_canonical) {
  const char *s = ++l->p;
  const char *p = s;
  bool nonascii = false;
#ifdef __SSE2__
  // Sixteen bytes at a time (SSE2 is in every x86-64) while none is '"', '\\', a control
  // character or non-ASCII: a signed compare below 0x20 catches both of the last two.
  // Base64 packets and raw sections are long strings: half the iterations of the word loop.
  while (l->end - p >= 16) {
    __m128i w = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(w, _mm_set1_epi8('"')), _mm_cmpeq_epi8(w, _mm_set1_epi8('\\'))),
                               _mm_cmplt_epi8(w, _mm_set1_epi8(0x20)));
    int m = _mm_movemask_epi8(hit);
    if (m) {
      p += __builtin_ctz((unsigned)m);
      goto stop;
    }
    p += 16;
  }
#endif
  // Fast path: no escape. Eight bytes at a time while none is '"', '\\', a control
  // character or non-ASCII (SWAR: a byte's high bit marks a match), then byte by byte.
  while (l->end - p >= 8) {
    uint64_t w;
    memcpy(&w, p, 8);
    const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    uint64_t hit = (((q - ones) & ~q) | ((b - ones) & ~b) | ((w - ones * 0x20) & ~w) | w) & high;
    if (hit) {
      // The lowest marked byte is exact (only bytes above a match can be false marks).
      p += __builtin_ctzll(hit) / 8;
      goto stop;
    }
    p += 8;
  }
  goto slow;
stop:
  // Every byte before p is plain ASCII: a closing quote there ends the string at once.
  if (*p == '"') {
    *out = s;
    *len = (size_t)(p - s);
    if (had_escape) *had_escape = false;
    l->p = p + 1;
    return true;
  }
slow:
  while (p < l->end && *p != '"' && *p != '\\') {
    unsigned char c = (unsigned char)*p;
    if (c < 0x20) return FAIL("control character in a string");
    if (c >= 0x80) nonascii = true;
    p++;
  }
  if (p >= l->end) return FAIL("unterminated string");
  if (*p == '"') {
    if (nonascii && !valid_utf8((const unsigned char *)s, (size_t)(p - s))) return FAIL("invalid UTF-8 in a string");
    *out = s;
    *len = (size_t)(p - s);
    if (had_escape) *had_escape = false;
    l->p = p + 1;
    return true;
  }
  if (had_escape) *had_escape = true;
  // Escapes: decode into the scratch buffer (never longer than the text).
  size_t n = (size_t)(p - s);
  const char *q = p;
  while (q < l->end && *q != '"') q += (*q == '\\') ? 2 : 1;
  if (!ensure_buf(l, (size_t)(q - s) + 8)) return false;
  char *d = l->buf;
  memcpy(d, s, n);
  while (p < l->end) {
    unsigned char c = (unsigned char)*p;
    if (c == '"') break;
    if (c < 0x20) return FAIL("control character in a string");
    if (c >= 0x80) nonascii = true;
    if (c != '\\') { d[n++] = (char)c; p++; continue; }
    if (p + 1 >= l->end) return FAIL("unterminated string");
    char e = p[1];
    p += 2;
    switch (e) {
    case '"': d[n++] = '"'; break;
    case '\\': d[n++] = '\\'; break;
    case '/': d[n++] = '/'; if (non_canonical) *non_canonical = true; break;
    case 'b': d[n++] = '\b'; break;
    case 'f': d[n++] = '\f'; break;
    case 'n': d[n++] = '\n'; break;
    case 'r': d[n++] = '\r'; break;
    case 't': d[n++] = '\t'; break;
    case 'u': {
      if (non_canonical) *non_canonical = true;
      uint32_t cp;
      if (!read_hex4(l, p, &cp)) return false;
      p += 4;
      if (cp >= 0xd800 && cp <= 0xdbff) {
        uint32_t lo;
        if (l->end - p < 6 || p[0] != '\\' || p[1] != 'u' || !read_hex4(l, p + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
          return FAIL("lone surrogate in a \\u escape");
        p += 6;
        cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
      } else if (cp >= 0xdc00 && cp <= 0xdfff) {
        return FAIL("lone surrogate in a \\u escape");
      }
      if (cp == 0) return FAIL("\\u0000 in a string");
      if (cp < 0x80) d[n++] = (char)cp;
      else if (cp < 0x800) { d[n++] = (char)(0xc0 | (cp >> 6)); d[n++] = (char)(0x80 | (cp & 0x3f)); }
      else if (cp < 0x10000) {
        d[n++] = (char)(0xe0 | (cp >> 12)); d[n++] = (char)(0x80 | ((cp >> 6) & 0x3f)); d[n++] = (char)(0x80 | (cp & 0x3f));
      } else {
        d[n++] = (char)(0xf0 | (cp >> 18)); d[n++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        d[n++] = (char)(0x80 | ((cp >> 6) & 0x3f)); d[n++] = (char)(0x80 | (cp & 0x3f));
      }
      break;
    }
    default: return FAIL("bad escape \\%c", e);
    }
  }
  if (p >= l->end) return FAIL("unterminated string");
  if (nonascii && !valid_utf8((const unsigned char *)d, n)) return FAIL("invalid UTF-8 in a string");
  *out = d;
  *len = n;
  l->p = p + 1;
  return true;
}

/** A JSON integer: sign and magnitude; fails on fractions, exponents, leading zeros. */
static inline const char *parse_int_at(local_t *l, const char *p, bool *neg, uint64_t *mag) {
  *neg = false;
  if (p < l->end && *p == '-') { *neg = true; p++; }
  if (p >= l->end || *p < '0' || *p > '9') return (void)FAIL("expected a number"), NULL;
  if (*p == '0' && p + 1 < l->end && p[1] >= '0' && p[1] <= '9') return (void)FAIL("number with a leading zero"), NULL;
  // One digit (0 and small counters: a third of the integers), then a delimiter.
  if (l->end - p >= 2 && (unsigned)(p[1] - '0') >= 10 && p[1] != '.' && p[1] != 'e' && p[1] != 'E') {
    *mag = (uint64_t)(*p - '0');
    return p + 1;
  }
  // Eight bytes at a time (SWAR): count the leading digits of the word, convert them with
  // three multiplications, and accumulate with overflow checks (no leading zero, so overflow
  // is exactly "out of range"; up to 19 digits never overflows).
  static const uint64_t pow10[9] = {1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000};
  uint64_t v = 0;
  for (;;) {
    if (l->end - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      // A byte is a digit iff its high nibble is 3 and its low nibble + 6 stays below 16.
      uint64_t bad = ((w & 0xF0F0F0F0F0F0F0F0ULL) ^ 0x3030303030303030ULL) |
                     (((w & 0x0F0F0F0F0F0F0F0FULL) + 0x0606060606060606ULL) & 0x1010101010101010ULL);
      uint64_t nz = (((bad & 0x7F7F7F7F7F7F7F7FULL) + 0x7F7F7F7F7F7F7F7FULL) | bad) & 0x8080808080808080ULL;
      unsigned nd = nz ? (unsigned)__builtin_ctzll(nz) / 8 : 8;
      if (nd == 0) break;
      // The nd digits at the top of the word, zeros before them: the first digit is the most significant.
      uint64_t x = w << (8 * (8 - nd));
      x = (x & 0x0F0F0F0F0F0F0F0FULL) * 2561 >> 8;
      x = (x & 0x00FF00FF00FF00FFULL) * 6553601 >> 16;
      x = (x & 0x0000FFFF0000FFFFULL) * 42949672960001ULL >> 32;
      if (__builtin_mul_overflow(v, pow10[nd], &v) || __builtin_add_overflow(v, x, &v)) return (void)FAIL("integer out of range"), NULL;
      p += nd;
      if (nd < 8) break;
    } else {
      for (; p < l->end && (unsigned)(*p - '0') < 10; p++)
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, (uint64_t)(*p - '0'), &v)) return (void)FAIL("integer out of range"), NULL;
      break;
    }
  }
  if (p < l->end && (*p == '.' || *p == 'e' || *p == 'E')) return (void)FAIL("not an integer"), NULL;
  *mag = v;
  return p;
}

static bool parse_int(local_t *l, bool *neg, uint64_t *mag) {
  const char *p = parse_int_at(l, l->p, neg, mag);
  if (!p) return false;
  l->p = p;
  return true;
}

/**
 * Skip any JSON value, checking its syntax. `canon` (raw sections) is cleared when read_json
 * would write the value back differently: whitespace, \u or \/ escapes, non-integer numbers, -0.
 */
static bool skip_value(local_t *l, bool *canon, int depth, const node_t *shape) {
  if (depth > 64) return FAIL("nesting too deep");
  if (l->p >= l->end) return FAIL("unexpected end of line");
  char c = *l->p;
  if (c == '"') {
    const char *s;
    size_t n;
    bool nc = false;
    if (!parse_string(l, &s, &n, NULL, &nc)) return false;
    if (nc && canon) *canon = false;
    return true;
  }
  if (c == '{' || c == '[') {
    char close = c == '{' ? '}' : ']';
    l->p++;
    const char *before = l->p;
    skip_ws(l);
    if (l->p != before && canon) *canon = false;
    if (l->p < l->end && *l->p == close) { l->p++; return true; }
    uint64_t seen = 0;
    size_t hint = 0;
    for (;;) {
      const node_t *field = NULL;
      if (c == '{') {
        if (l->p >= l->end || *l->p != '"') return FAIL("expected a key");
        // A raw section's shape: note which of its fields are present (non-null). Its keys
        // are tried as quoted text in place, from the field after the last one (Retis's
        // order; names are unique); any other key is parsed (and must not be escaped).
        if (shape) {
          size_t i = hint < shape->nkids ? hint : 0;
          for (size_t tries = 0; tries < shape->nkids; tries++, i = i + 1 == shape->nkids ? 0 : i + 1) {
            if (key_at(&shape->kids[i], l->p, l->end)) {
              if (seen & ((uint64_t)1 << i)) return FAIL("duplicate key \"%s\"", shape->kids[i].name);
              seen |= (uint64_t)1 << i;
              field = &shape->kids[i];
              hint = i + 1;
              l->p += field->name_len + 2;
              break;
            }
          }
        }
        if (!field) {
          const char *s;
          size_t n;
          bool nc = false, esc = false;
          if (!parse_string(l, &s, &n, &esc, &nc)) return false;
          if (nc && canon) *canon = false;
          if (shape && esc) return FAIL("escaped key in a raw section");
        }
        before = l->p;
        skip_ws(l);
        if (l->p >= l->end || *l->p != ':') return FAIL("expected :");
        l->p++;
        if (l->p != before + 1 && canon) *canon = false;
        before = l->p;
        skip_ws(l);
        if (l->p != before && canon) *canon = false;
      }
      if (field && l->p < l->end && *l->p != 'n') set_present(l, field);
      if (!skip_value(l, canon, depth + 1, field && field->kind == K_STRUCT ? field : NULL)) return false;
      before = l->p;
      skip_ws(l);
      if (l->p != before && canon) *canon = false;
      if (l->p >= l->end) return FAIL("unexpected end of line");
      if (*l->p == ',') {
        l->p++;
        before = l->p;
        skip_ws(l);
        if (l->p != before && canon) *canon = false;
        continue;
      }
      if (*l->p == close) { l->p++; return true; }
      return FAIL("expected , or %c", close);
    }
  }
  if (c == 't' && l->end - l->p >= 4 && memcmp(l->p, "true", 4) == 0) { l->p += 4; return true; }
  if (c == 'f' && l->end - l->p >= 5 && memcmp(l->p, "false", 5) == 0) { l->p += 5; return true; }
  if (c == 'n' && l->end - l->p >= 4 && memcmp(l->p, "null", 4) == 0) { l->p += 4; return true; }
  if (c == '-' || (c >= '0' && c <= '9')) {
    const char *p = l->p;
    if (*p == '-') p++;
    if (p >= l->end || *p < '0' || *p > '9') return FAIL("bad number");
    if (*p == '0' && p + 1 < l->end && p[1] >= '0' && p[1] <= '9') return FAIL("number with a leading zero");
    bool zero = *p == '0';
    while (p < l->end && *p >= '0' && *p <= '9') p++;
    bool frac = false;
    if (p < l->end && *p == '.') {
      frac = true;
      p++;
      if (p >= l->end || *p < '0' || *p > '9') return FAIL("bad number");
      while (p < l->end && *p >= '0' && *p <= '9') p++;
    }
    if (p < l->end && (*p == 'e' || *p == 'E')) {
      frac = true;
      p++;
      if (p < l->end && (*p == '+' || *p == '-')) p++;
      if (p >= l->end || *p < '0' || *p > '9') return FAIL("bad number");
      while (p < l->end && *p >= '0' && *p <= '9') p++;
    }
    if (canon && (frac || (zero && c == '-'))) *canon = false;
    l->p = p;
    return true;
  }
  return FAIL("not a JSON value");
}

static inline void set_valid(vstate_t *v, idx_t row) { v->validity[row / 64] |= (uint64_t)1 << (row % 64); }

/**
 * A VARCHAR/BLOB value: strings of up to 12 bytes are stored inline in the vector's
 * duckdb_string_t (the layout duckdb.h documents), without a call into DuckDB; longer ones
 * go to the vector's string heap through the API.
 */
static inline void put_string(vstate_t *v, idx_t row, const char *s, size_t n) {
  if (n <= 12) {
    duckdb_string_t *d = (duckdb_string_t *)v->data + row;
    memset(d, 0, sizeof *d);
    d->value.inlined.length = (uint32_t)n;
    memcpy(d->value.inlined.inlined, s, n);
  } else {
    duckdb_unsafe_vector_assign_string_element_len(v->v, row, s, n);
  }
}

/**
 * A VARCHAR value that lies in the file as is (no escape): referenced, not copied. The
 * mapping lives as long as the bind data, i.e. the whole query, and DuckDB copies a string
 * out of a vector before it keeps it beyond the chunk (storage, sort, hash tables, results).
 * Saves copying every long string into the vector's heap (4-5% of a load's CPU) before the
 * insert copies it again.
 */
static inline void put_file_string(local_t *l, vstate_t *v, idx_t row, const char *s, size_t n) {
  if (n <= 12) {
    put_string(v, row, s, n);
    return;
  }
  if (n <= 64) {
    // Short strings repeat (symbols, probe types, comms, reasons): point every copy at one
    // earlier occurrence in the file, which stays in cache. DuckDB reads each string again
    // when it appends the chunk (statistics, copy into storage), 2048 rows after the parse,
    // and the file's bytes are out of the near caches by then (that read was ~8% of a load).
    uint64_t a, b;
    memcpy(&a, s, 8);
    memcpy(&b, s + n - 8, 8);
    uint64_t h = (a * 0x9E3779B97F4A7C15ULL) ^ (b + n) * 0xC2B2AE3D27D4EB4FULL;
    size_t slot = (size_t)(h >> 56);
    if (l->intern[slot].n == n && memcmp(l->intern[slot].p, s, n) == 0) {
      s = l->intern[slot].p;
    } else {
      l->intern[slot].p = s;
      l->intern[slot].n = n;
    }
  }
  duckdb_string_t *d = (duckdb_string_t *)v->data + row;
  d->value.pointer.length = (uint32_t)n;
  memcpy(d->value.pointer.prefix, s, 4);
  d->value.pointer.ptr = (char *)s;
}

static int8_t b64dec[256]; // filled once at module load (init_b64), read-only after

static uint32_t b64t[4][256]; // per position in a group: the 6 bits in place, or bit 31 (invalid)

static void init_b64(void) {
  memset(b64dec, -1, sizeof b64dec);
  for (int k = 0; k < 4; k++)
    for (int c = 0; c < 256; c++) b64t[k][c] = 1u << 31;
  const char *a = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  for (int i = 0; i < 64; i++) {
    b64dec[(unsigned char)a[i]] = (int8_t)i;
    for (int k = 0; k < 4; k++) b64t[k][(unsigned char)a[i]] = (uint32_t)i << (18 - 6 * k);
  }
}

static bool append_base64(local_t *l, vstate_t *v, idx_t row, const char *s, size_t n) {
  const int8_t *dec = b64dec;
  // Only the canonical form (padded, zero trailing bits): anything else goes to from_base64.
  if (n % 4 != 0) return FAIL("base64 length not a multiple of 4");
  size_t pad = 0;
  if (n >= 1 && s[n - 1] == '=') pad++;
  if (n >= 2 && s[n - 2] == '=') pad++;
  size_t out_len = n / 4 * 3 - pad;
  char *small = l->b64;
  char *d = small;
  if (out_len + 1 > sizeof l->b64) {
    // The scratch buffer may hold `s` (an escaped string): base64 never has escapes, but be safe.
    d = malloc(out_len + 1);
    if (!d) return FAIL("out of memory");
  }
  // Full groups: four table lookups OR'ed into 24 bits (an invalid character sets bit 31,
  // checked once for the whole string), stored as four bytes of which the last is
  // overwritten by the next group (the buffer has a byte to spare).
  size_t o = 0, full = pad ? n - 4 : n;
  uint32_t badbits = 0;
  for (size_t i = 0; i < full; i += 4) {
    uint32_t x = b64t[0][(unsigned char)s[i]] | b64t[1][(unsigned char)s[i + 1]] | b64t[2][(unsigned char)s[i + 2]] |
                 b64t[3][(unsigned char)s[i + 3]];
    badbits |= x;
    uint32_t be = __builtin_bswap32(x << 8);
    memcpy(d + o, &be, 4);
    o += 3;
  }
  if (badbits >> 31) goto bad;
  if (pad) {
    size_t i = n - 4;
    int a = dec[(unsigned char)s[i]], b = dec[(unsigned char)s[i + 1]], c = dec[(unsigned char)s[i + 2]];
    if (pad == 2) {
      if (a < 0 || b < 0 || (b & 15)) goto bad;
      d[o++] = (char)((a << 2) | (b >> 4));
    } else {
      if (a < 0 || b < 0 || c < 0 || (c & 3)) goto bad;
      d[o++] = (char)((a << 2) | (b >> 4));
      d[o++] = (char)(((b & 15) << 4) | (c >> 2));
    }
  }
  put_string(v, row, d, o);
  set_valid(v, row);
  if (d != small) free(d);
  return true;
bad:
  if (d != small) free(d);
  return FAIL("not canonical base64");
}

/**
 * An integer into its column: one range test from tables, a store by width. Negative values
 * are stored as their two's complement (-0 is 0, also for unsigned columns).
 */
static inline bool store_int(local_t *l, const node_t *n, idx_t row, bool neg, uint64_t m) {
  static const uint64_t pos_max[] = {[K_I8] = INT8_MAX, [K_I16] = INT16_MAX, [K_I32] = INT32_MAX, [K_I64] = INT64_MAX,
                                     [K_U8] = UINT8_MAX, [K_U16] = UINT16_MAX, [K_U32] = UINT32_MAX, [K_U64] = UINT64_MAX};
  static const uint64_t neg_max[] = {[K_I8] = 128, [K_I16] = 32768, [K_I32] = 2147483648u, [K_I64] = (uint64_t)INT64_MAX + 1};
  static const uint8_t width[] = {[K_I8] = 1, [K_I16] = 2, [K_I32] = 4, [K_I64] = 8, [K_U8] = 1, [K_U16] = 2, [K_U32] = 4, [K_U64] = 8};
  kind_t k = n->kind;
  vstate_t *v = &l->vs[n->id];
  if (m > (neg ? neg_max[k] : pos_max[k])) return FAIL("integer out of range for \"%s\"", n->name);
  uint64_t x = neg ? 0 - m : m;
  switch (width[k]) {
  case 1: ((uint8_t *)v->data)[row] = (uint8_t)x; break;
  case 2: ((uint16_t *)v->data)[row] = (uint16_t)x; break;
  case 4: ((uint32_t *)v->data)[row] = (uint32_t)x; break;
  default: ((uint64_t *)v->data)[row] = x; break;
  }
  set_valid(v, row);
  return true;
}

static bool parse_into(local_t *l, const node_t *n, idx_t row, int depth);

/** The element vector of a list node: capacity for one more, data re-read (reserve may move it). */
static bool list_append(local_t *l, const node_t *n, idx_t row) {
  vstate_t *lv = &l->vs[n->id];
  const node_t *e = &n->kids[0];
  vstate_t *ev = &l->vs[e->id];
  idx_t start = duckdb_list_vector_get_size(lv->v);
  idx_t count = 0;
  l->p++; // '['
  skip_ws(l);
  if (l->p < l->end && *l->p == ']') {
    l->p++;
  } else {
    for (;;) {
      idx_t at = start + count;
      if (duckdb_list_vector_reserve(lv->v, at + 1) != DuckDBSuccess) return FAIL("cannot grow a list");
      ev->v = duckdb_list_vector_get_child(lv->v);
      duckdb_vector_ensure_validity_writable(ev->v);
      ev->data = duckdb_vector_get_data(ev->v);
      ev->validity = duckdb_vector_get_validity(ev->v);
      duckdb_validity_set_row_invalid(ev->validity, at);
      skip_ws(l);
      if (!parse_into(l, e, at, 1)) return false;
      count++;
      if (duckdb_list_vector_set_size(lv->v, start + count) != DuckDBSuccess) return FAIL("cannot grow a list");
      skip_ws(l);
      if (l->p < l->end && *l->p == ',') { l->p++; continue; }
      if (l->p < l->end && *l->p == ']') { l->p++; break; }
      return FAIL("expected , or ]");
    }
  }
  duckdb_list_entry *entries = lv->data;
  entries[row].offset = start;
  entries[row].length = count;
  set_valid(lv, row);
  return true;
}

static bool parse_struct(local_t *l, const node_t *n, idx_t row, int depth) {
  // The cursor lives in `p` here; l->p is synced around the calls that move it.
  const char *p = l->p, *const e = l->end;
  if (*p != '{') return FAIL("expected an object for \"%s\"", n->name ? n->name : "event");
  p++;
  uint64_t seen = 0;
  size_t hint = 0;
  SKIP_WS(p, e);
  if (p < e && *p == '}') {
    p++;
  } else {
    for (;;) {
      if (p >= e || *p != '"') return FAIL("expected a key");
      const char *k;
      size_t kn;
      // Retis writes keys in the model's order, leaving out absent fields: try the fields
      // from the one after the last key on, each as `"name"` right there (names hold no
      // quote or backslash, so that is an exact match), without scanning the key first.
      const node_t *f = NULL;
      size_t fi = hint < n->nkids ? hint : 0;
      for (size_t tries = 0; tries < n->nkids; tries++, fi = fi + 1 == n->nkids ? 0 : fi + 1) {
        if (key_at(&n->kids[fi], p, e)) {
          f = &n->kids[fi];
          break;
        }
      }
      if (f) {
        k = p + 1;
        kn = f->name_len;
        p += kn + 2;
      } else {
        bool esc;
        l->p = p;
        if (!parse_string(l, &k, &kn, &esc, NULL)) return false;
        p = l->p;
        if (esc) return FAIL("escaped key");
        // Not a field of the model (none matched above): skipped below.
      }
      if (p < e && *p == ':') {
        p++;
      } else {
        SKIP_WS(p, e);
        if (p >= e || *p != ':') return FAIL("expected :");
        p++;
      }
      SKIP_WS(p, e);
      if (p >= e) return FAIL("unexpected end of line");
      if (f) {
        hint = fi + 1;
        if (seen & ((uint64_t)1 << fi)) return FAIL("duplicate key \"%.*s\"", (int)kn, k);
        seen |= (uint64_t)1 << fi;
        if (f->kind >= K_I8 && f->kind <= K_U64 && *p != 'n' && depth + 1 <= 64) {
          // An integer (most fields): parse_into's steps, on the register cursor.
          bool neg;
          uint64_t m;
          set_present(l, f);
          if (!(p = parse_int_at(l, p, &neg, &m)) || !store_int(l, f, row, neg, m)) return false;
        } else {
          l->p = p;
          if (!parse_into(l, f, row, depth + 1)) return false;
          p = l->p;
        }
      } else {
        l->p = p;
        if (!skip_value(l, NULL, depth + 1, NULL)) return false;
        p = l->p;
      }
      SKIP_WS(p, e);
      if (p < e && *p == ',') {
        p++;
        SKIP_WS(p, e);
        continue;
      }
      if (p < e && *p == '}') { p++; break; }
      return FAIL("expected , or }");
    }
  }
  l->p = p;
  if (n->id != l->b->root.id) set_valid(&l->vs[n->id], row);
  return true;
}

static bool parse_into(local_t *l, const node_t *n, idx_t row, int depth) {
  if (depth > 64) return FAIL("nesting too deep");
  char c = *l->p;
  // null: the value stays NULL (validity was cleared for the whole chunk, or per element).
  if (c == 'n') {
    if (l->end - l->p >= 4 && memcmp(l->p, "null", 4) == 0) { l->p += 4; return true; }
    return FAIL("not a JSON value");
  }
  vstate_t *v = &l->vs[n->id];
  set_present(l, n); // not null (a parse error fails the whole file anyway)
  kind_t k = n->kind;
  if (k >= K_I8 && k <= K_U64) {
    bool neg;
    uint64_t m;
    if (!parse_int(l, &neg, &m)) return false;
    return store_int(l, n, row, neg, m);
  }
  switch (k) {
  case K_STRUCT: return parse_struct(l, n, row, depth);
  case K_LIST:
    if (c != '[') return FAIL("expected an array for \"%s\"", n->name);
    return list_append(l, n, row);
  case K_RAW: {
    if (c != '{') return FAIL("expected an object for \"%s\"", n->name);
    const char *s = l->p;
    bool canon = true;
    if (!skip_value(l, &canon, depth, n->nkids ? n : NULL)) return false;
    if (!canon) return FAIL("section \"%s\" is not in read_json's canonical form", n->name);
    put_file_string(l, v, row, s, (size_t)(l->p - s));
    set_valid(v, row);
    return true;
  }
  case K_STR: case K_B64: {
    if (c != '"') return FAIL("expected a string for \"%s\"", n->name);
    const char *s;
    size_t len;
    bool esc;
    if (!parse_string(l, &s, &len, &esc, NULL)) return false;
    if (n->kind == K_B64) return append_base64(l, v, row, s, len);
    // Unescaped, the string is the file's bytes; decoded, it is in l->buf (reused): copied.
    if (esc) put_string(v, row, s, len);
    else put_file_string(l, v, row, s, len);
    set_valid(v, row);
    return true;
  }
  case K_BOOL:
    if (c == 't' && l->end - l->p >= 4 && memcmp(l->p, "true", 4) == 0) { ((bool *)v->data)[row] = true; l->p += 4; }
    else if (c == 'f' && l->end - l->p >= 5 && memcmp(l->p, "false", 5) == 0) { ((bool *)v->data)[row] = false; l->p += 5; }
    else return FAIL("expected a boolean for \"%s\"", n->name);
    set_valid(v, row);
    return true;
  default: break;
  }
  return FAIL("internal: bad kind");
}

//// SCAN ////

/** Vector state for a new output chunk: every value NULL until written. */
static void bind_vectors(local_t *l, const node_t *n, duckdb_vector v) {
  vstate_t *s = &l->vs[n->id];
  s->v = v;
  if (n->in_list) return; // element vectors are set up per append (list_append)
  s->data = duckdb_vector_get_data(v);
  s->validity = l->masks + (size_t)n->id * MASK_WORDS;
  memset(s->validity, 0, MASK_WORDS * sizeof(uint64_t));
  if (n->kind == K_STRUCT) {
    for (size_t i = 0; i < n->nkids; i++) bind_vectors(l, &n->kids[i], duckdb_struct_vector_get_child(v, i));
  } else if (n->kind == K_LIST) {
    // Entries of NULL rows are never written: make them empty rather than stale.
    memset(s->data, 0, duckdb_vector_size() * sizeof(duckdb_list_entry));
    l->vs[n->kids[0].id].v = duckdb_list_vector_get_child(v);
  }
}

/**
 * Hand a vector its validity: nothing when all `rows` are valid, so DuckDB keeps the vector
 * without a mask and its appends take their no-NULL paths (with a mask, even a full one, the
 * insert tests every row of every column: ValidityAppend alone was 4% of a load).
 */
static void put_validity(duckdb_vector v, const uint64_t *mask, idx_t rows) {
  idx_t valid = 0;
  for (size_t w = 0; w < MASK_WORDS; w++) valid += (idx_t)__builtin_popcountll(mask[w]);
  if (valid == rows) return;
  duckdb_vector_ensure_validity_writable(v);
  memcpy(duckdb_vector_get_validity(v), mask, MASK_WORDS * sizeof(uint64_t));
}

static void flush_validity(local_t *l, const node_t *n, idx_t rows) {
  if (n->in_list) return;
  put_validity(l->vs[n->id].v, l->vs[n->id].validity, rows);
  if (n->kind == K_STRUCT)
    for (size_t i = 0; i < n->nkids; i++) flush_validity(l, &n->kids[i], rows);
}

/** The row's first failing check as validate.ts words it (NULL when none fails). */
static void put_problem(local_t *l, vstate_t *probv, idx_t row) {
  const bind_t *b = l->b;
  for (size_t i = 0; i < b->nchecks; i++) {
    const check_t *c = &b->checks[i];
    bool has = is_present(l, c->struct_id);
    if (c->nfields == 0) {
      if (has) continue;
      put_string(probv, row, c->message, strlen(c->message));
      set_valid(probv, row);
      return;
    }
    if (!has) continue;
    bool all = true;
    for (size_t w = c->w0; w < c->w1; w++) all &= (l->present[w] & c->need[w]) == c->need[w];
    if (all) continue;
    for (size_t j = 0; j < c->nfields; j++) {
      if (is_present(l, c->field_ids[j])) continue;
      char msg[256];
      int n = snprintf(msg, sizeof msg, "%s lacks required field \"%s\"", c->message, c->field_names[j]);
      put_string(probv, row, msg, n < 0 ? 0 : (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
      set_valid(probv, row);
      return;
    }
  }
}

/**
 * Take the next chunk: count its records and publish the count, then number its first record
 * from the counts of the chunks before it. Chunks are claimed in order and each claimer counts
 * first (a memchr pass, a few ms per 16 MB, depending on nothing), so a count still missing is
 * being made by another thread right now: wait for it. Each thread keeps the sum of the counts
 * it has read (its claims only go up), so every count is read once per thread.
 */
static bool claim_chunk(local_t *l) {
  global_t *g = l->g;
  size_t i = atomic_fetch_add(&g->next, 1);
  if (getenv("RETIS_JSON_DEBUG")) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    fprintf(stderr, "retis_json: thread %p claims %zu at %ld.%03ld\n", (void *)l, i, (long)ts.tv_sec, ts.tv_nsec / 1000000);
  }
  if (i >= g->nchunks) return false;
  chunk_t *c = &g->chunks[i];
  l->p = l->b->data + c->start;
  l->end = l->b->data + c->end;
  atomic_store_explicit(&c->counted, count_records(l->p, l->end) + 1, memory_order_release);
  for (; l->counted_to < i; l->counted_to++) {
    uint64_t k;
    while ((k = atomic_load_explicit(&g->chunks[l->counted_to].counted, memory_order_acquire)) == 0) sched_yield();
    l->before += k - 1;
  }
  l->record = l->before + 1;
  l->have_chunk = true;
  return true;
}

static void scan(duckdb_function_info info, duckdb_data_chunk out) {
  local_t *l = duckdb_function_get_local_init_data(info);
  // The C API gives the global state to the scan, not to the local init.
  if (!l->g) l->g = duckdb_function_get_init_data(info);
  const bind_t *b = l->b;
  idx_t cap = duckdb_vector_size();
  duckdb_vector seqv = duckdb_data_chunk_get_vector(out, 0);
  uint64_t *seq = duckdb_vector_get_data(seqv);
  for (size_t i = 0; i < b->root.nkids; i++) bind_vectors(l, &b->root.kids[i], duckdb_data_chunk_get_vector(out, i + 1));
  vstate_t probv = {.v = duckdb_data_chunk_get_vector(out, b->root.nkids + 1)};
  probv.data = duckdb_vector_get_data(probv.v);
  probv.validity = l->probmask;
  memset(probv.validity, 0, MASK_WORDS * sizeof(uint64_t));
  idx_t row = 0;
  while (row < cap) {
    if (!l->have_chunk || l->p >= l->end) {
      l->have_chunk = false;
      if (!claim_chunk(l)) break;
      continue;
    }
    skip_ws(l);
    if (l->p >= l->end) continue; // blank last line
    if (*l->p == '\n') {         // blank line: not a record
      l->p++;
      continue;
    }
    memset(l->present, 0, ((size_t)b->nnodes + 63) / 64 * sizeof(uint64_t));
    bool ok = parse_struct(l, &b->root, row, 0);
    if (ok) {
      skip_ws(l);
      if (l->p < l->end && *l->p != '\n') ok = FAIL("text after the event");
    }
    if (!ok) {
      char msg[768];
      snprintf(msg, sizeof msg, "retis_json_events: %s: record %llu: %s", b->path, (unsigned long long)l->record, l->err);
      duckdb_function_set_error(info, msg);
      duckdb_data_chunk_set_size(out, 0);
      return;
    }
    seq[row] = l->record++;
    put_problem(l, &probv, row);
    row++;
    if (l->p < l->end) l->p++; // the newline
  }
  for (size_t i = 0; i < b->root.nkids; i++) flush_validity(l, &b->root.kids[i], row);
  put_validity(probv.v, probv.validity, row);
  duckdb_data_chunk_set_size(out, row);
}

//// PACKET FIELDS ////
//
// retis_packet(data BLOB) -> STRUCT(ethertype USMALLINT, saddr VARCHAR, daddr VARCHAR,
//                                  ip_proto UTINYINT, proto VARCHAR, sport USMALLINT, dport USMALLINT)
//
// The flat columns read from a packet's raw bytes (Ethernet first). The SQL macros of
// analyze/model/derive.ts define them and remain the oracle (tests/analyze/native-json.test.ts
// compares every column); when this addon is loaded, every reader uses this function
// instead (the SQL costs ~5 us per event, most of the load's CPU after parsing).

static const char *const PACKET_FIELDS[] = {"ethertype", "saddr", "daddr", "ip_proto", "proto", "sport", "dport"};
enum { PF_ET, PF_SADDR, PF_DADDR, PF_PROTO_NUM, PF_PROTO, PF_SPORT, PF_DPORT, PF_N };

static inline bool u8_at(const uint8_t *b, size_t n, size_t o, unsigned *v) {
  if (n <= o) return false;
  *v = b[o];
  return true;
}
static inline bool u16_at(const uint8_t *b, size_t n, size_t o, unsigned *v) {
  if (n < o + 2) return false;
  *v = ((unsigned)b[o] << 8) | b[o + 1];
  return true;
}

/** Decimal digits of v (< 1000), no leading zeros. (sprintf was ~3% of a whole load.) */
static inline size_t put_dec(char *out, unsigned v) {
  size_t o = 0;
  if (v >= 100) out[o++] = (char)('0' + v / 100);
  if (v >= 10) out[o++] = (char)('0' + v / 10 % 10);
  out[o++] = (char)('0' + v % 10);
  return o;
}

/** Lowercase hex of a 16-bit group, no leading zeros. */
static inline size_t put_hex(char *out, unsigned v) {
  static const char hex[] = "0123456789abcdef";
  size_t o = 0;
  for (int shift = 12; shift > 0; shift -= 4)
    if (v >> shift || o) out[o++] = hex[v >> shift & 15];
  out[o++] = hex[v & 15];
  return o;
}

/** IPv4 text as the SQL's concat_ws does it. */
static size_t ipv4_text(char *out, const uint8_t *a) {
  size_t o = put_dec(out, a[0]);
  for (int i = 1; i < 4; i++) {
    out[o++] = '.';
    o += put_dec(out + o, a[i]);
  }
  return o;
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run (>= 2, first on ties) of zero groups as "::". */
static size_t ipv6_text(char *out, const uint8_t *a) {
  unsigned g[8];
  for (int i = 0; i < 8; i++) g[i] = ((unsigned)a[2 * i] << 8) | a[2 * i + 1];
  int best = -1, best_len = 1;
  for (int i = 0; i < 8; i++) {
    int n = 0;
    while (i + n < 8 && g[i + n] == 0) n++;
    if (n > best_len) {
      best = i;
      best_len = n;
    }
  }
  size_t o = 0;
  for (int i = 0; i < 8; i++) {
    if (i == best) {
      out[o++] = ':';
      out[o++] = ':';
      i += best_len - 1;
      continue;
    }
    if (i > 0 && i != best + best_len) out[o++] = ':';
    o += put_hex(out + o, g[i]);
  }
  return o;
}

static const char *proto_name(unsigned p) {
  switch (p) {
  case 6: return "tcp";
  case 17: return "udp";
  case 1: return "icmp";
  case 58: return "icmpv6";
  case 132: return "sctp";
  case 2: return "igmp";
  case 47: return "gre";
  case 50: return "esp";
  case 51: return "ah";
  case 4: return "ipip";
  case 41: return "ipv6";
  case 136: return "udplite";
  default: return NULL;
  }
}

static inline bool is_vlan(unsigned et) { return et == 0x8100 || et == 0x88a8 || et == 0x9100; }

/** A VARCHAR of the result: inline in the vector up to 12 bytes (addresses, names), else through the API. */
static inline void put_text(duckdb_vector v, void *data, idx_t row, const char *s, size_t n) {
  vstate_t vs = {.v = v, .data = data};
  put_string(&vs, row, s, n);
}

static void packet_fn(duckdb_function_info info, duckdb_data_chunk input, duckdb_vector output) {
  (void)info;
  idx_t rows = duckdb_data_chunk_get_size(input);
  duckdb_vector in = duckdb_data_chunk_get_vector(input, 0);
  const duckdb_string_t *blobs = duckdb_vector_get_data(in);
  const uint64_t *in_valid = duckdb_vector_get_validity(in);
  duckdb_vector kid[PF_N];
  uint64_t *valid[PF_N];
  void *data[PF_N];
  for (int i = 0; i < PF_N; i++) {
    kid[i] = duckdb_struct_vector_get_child(output, (idx_t)i);
    duckdb_vector_ensure_validity_writable(kid[i]);
    valid[i] = duckdb_vector_get_validity(kid[i]);
    data[i] = duckdb_vector_get_data(kid[i]);
    memset(valid[i], 0, (rows + 63) / 64 * sizeof(uint64_t));
  }
  // The struct itself is always valid: a NULL packet gives NULL fields, as the SQL does.
  duckdb_vector_ensure_validity_writable(output);
  uint64_t *out_valid = duckdb_vector_get_validity(output);
  memset(out_valid, 0xff, (rows + 63) / 64 * sizeof(uint64_t));
#define SETV(f, r) (valid[f][(r) / 64] |= (uint64_t)1 << ((r) % 64))
  for (idx_t r = 0; r < rows; r++) {
    if (in_valid && !(in_valid[r / 64] >> (r % 64) & 1)) continue;
    const duckdb_string_t *s = &blobs[r];
    size_t n = s->value.inlined.length;
    const uint8_t *b = n <= 12 ? (const uint8_t *)s->value.inlined.inlined : (const uint8_t *)s->value.pointer.ptr;
    unsigned v, et;
    size_t l3 = 14;
    if (u16_at(b, n, 12, &v) && is_vlan(v)) l3 = (u16_at(b, n, 16, &v) && is_vlan(v)) ? 22 : 18;
    if (!u16_at(b, n, l3 - 2, &et)) continue; // no ethertype: every field NULL
    ((uint16_t *)data[PF_ET])[r] = (uint16_t)et;
    SETV(PF_ET, r);
    bool have_p = false, have_l4 = false;
    unsigned p = 0;
    size_t l4 = 0;
    char text[64];
    if (et == 0x0800) {
      have_p = u8_at(b, n, l3 + 9, &p);
      unsigned frag, ihl;
      if (u16_at(b, n, l3 + 6, &frag) && (frag & 8191) == 0 && u8_at(b, n, l3, &ihl)) {
        l4 = l3 + 4 * (ihl & 15);
        have_l4 = true;
      }
      // concat_ws skips NULL parts: a truncated address is '' (the SQL's result, kept).
      size_t tn = n >= l3 + 16 ? ipv4_text(text, b + l3 + 12) : 0;
      put_text(kid[PF_SADDR], data[PF_SADDR], r, text, tn);
      SETV(PF_SADDR, r);
      tn = n >= l3 + 20 ? ipv4_text(text, b + l3 + 16) : 0;
      put_text(kid[PF_DADDR], data[PF_DADDR], r, text, tn);
      SETV(PF_DADDR, r);
    } else if (et == 0x86dd) {
      have_p = u8_at(b, n, l3 + 6, &p);
      l4 = l3 + 40;
      have_l4 = true;
      if (n >= l3 + 24) {
        put_text(kid[PF_SADDR], data[PF_SADDR], r, text, ipv6_text(text, b + l3 + 8));
        SETV(PF_SADDR, r);
      }
      if (n >= l3 + 40) {
        put_text(kid[PF_DADDR], data[PF_DADDR], r, text, ipv6_text(text, b + l3 + 24));
        SETV(PF_DADDR, r);
      }
    }
    if (have_p) {
      ((uint8_t *)data[PF_PROTO_NUM])[r] = (uint8_t)p;
      SETV(PF_PROTO_NUM, r);
    }
    const char *name = NULL;
    char num[8];
    if (et == 0x0806) name = "arp";
    else if (have_p && !(name = proto_name(p))) {
      snprintf(num, sizeof num, "%u", p);
      name = num;
    }
    if (name) {
      put_text(kid[PF_PROTO], data[PF_PROTO], r, name, strlen(name));
      SETV(PF_PROTO, r);
    }
    if (have_p && have_l4 && (p == 6 || p == 17 || p == 132 || p == 136)) {
      if (u16_at(b, n, l4, &v)) {
        ((uint16_t *)data[PF_SPORT])[r] = (uint16_t)v;
        SETV(PF_SPORT, r);
      }
      if (u16_at(b, n, l4 + 2, &v)) {
        ((uint16_t *)data[PF_DPORT])[r] = (uint16_t)v;
        SETV(PF_DPORT, r);
      }
    }
  }
#undef SETV
}

static bool register_packet_fn(duckdb_connection conn) {
  duckdb_scalar_function f = duckdb_create_scalar_function();
  if (!f) return false;
  duckdb_scalar_function_set_name(f, "retis_packet");
  duckdb_logical_type blob = duckdb_create_logical_type(DUCKDB_TYPE_BLOB);
  duckdb_scalar_function_add_parameter(f, blob);
  duckdb_destroy_logical_type(&blob);
  duckdb_type kinds[PF_N] = {DUCKDB_TYPE_USMALLINT, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_UTINYINT,
                             DUCKDB_TYPE_VARCHAR, DUCKDB_TYPE_USMALLINT, DUCKDB_TYPE_USMALLINT};
  duckdb_logical_type types[PF_N];
  for (int i = 0; i < PF_N; i++) types[i] = duckdb_create_logical_type(kinds[i]);
  duckdb_logical_type ret = duckdb_create_struct_type(types, (const char **)PACKET_FIELDS, PF_N);
  for (int i = 0; i < PF_N; i++) duckdb_destroy_logical_type(&types[i]);
  duckdb_scalar_function_set_return_type(f, ret);
  duckdb_destroy_logical_type(&ret);
  duckdb_scalar_function_set_function(f, packet_fn);
  duckdb_state st = duckdb_register_scalar_function(conn, f);
  duckdb_destroy_scalar_function(&f);
  return st == DuckDBSuccess;
}

//// N-API ////

static napi_value throw_msg(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

/** register(connection External): adds retis_json_events to that DuckDB connection. */
static napi_value js_register(napi_env env, napi_callback_info cbinfo) {
  size_t argc = 1;
  napi_value argv[1];
  if (napi_get_cb_info(env, cbinfo, &argc, argv, NULL, NULL) != napi_ok || argc < 1) return throw_msg(env, "register(connection): missing argument");
  napi_valuetype t;
  if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external) return throw_msg(env, "register(connection): not a DuckDB connection handle (an External)");
  // @duckdb/node-bindings tags its connection Externals; the tag is its interface, so a
  // wrong object (another External, a bindings release that changed it) is refused here.
  static const napi_type_tag connection_tag = {0x922B9BF54AB04DFCULL, 0x8A258578D371DB71ULL};
  bool tagged = false;
  if (napi_check_object_type_tag(env, argv[0], &connection_tag, &tagged) != napi_ok || !tagged)
    return throw_msg(env, "register(connection): not a @duckdb/node-bindings connection (type tag differs)");
  void *ptr = NULL;
  if (napi_get_value_external(env, argv[0], &ptr) != napi_ok || !ptr) return throw_msg(env, "register(connection): cannot read the connection handle");
  // The External holds a small struct whose first member is the duckdb_connection (the
  // bindings keep it there so they can disconnect on finalisation).
  duckdb_connection conn = *(duckdb_connection *)ptr;
  if (!conn) return throw_msg(env, "register(connection): the connection is closed");
  duckdb_table_function f = duckdb_create_table_function();
  if (!f) return throw_msg(env, "duckdb_create_table_function failed");
  duckdb_table_function_set_name(f, "retis_json_events");
  duckdb_logical_type varchar = duckdb_create_logical_type(DUCKDB_TYPE_VARCHAR);
  duckdb_logical_type bigint = duckdb_create_logical_type(DUCKDB_TYPE_BIGINT);
  duckdb_table_function_add_parameter(f, varchar);
  duckdb_table_function_add_parameter(f, varchar);
  duckdb_table_function_add_parameter(f, bigint);
  duckdb_table_function_add_parameter(f, varchar);
  duckdb_destroy_logical_type(&varchar);
  duckdb_destroy_logical_type(&bigint);
  duckdb_table_function_set_bind(f, bind);
  duckdb_table_function_set_init(f, init);
  duckdb_table_function_set_local_init(f, local_init);
  duckdb_table_function_set_function(f, scan);
  duckdb_state st = duckdb_register_table_function(conn, f);
  duckdb_destroy_table_function(&f);
  if (st != DuckDBSuccess) return throw_msg(env, "duckdb_register_table_function(retis_json_events) failed (already registered, or not a connection?)");
  if (!register_packet_fn(conn)) return throw_msg(env, "duckdb_register_scalar_function(retis_packet) failed");
  napi_value undef;
  napi_get_undefined(env, &undef);
  return undef;
}

/** The DuckDB library this addon is linked against: must be the one node-api loaded. */
static napi_value js_version(napi_env env, napi_callback_info cbinfo) {
  (void)cbinfo;
  napi_value s;
  if (napi_create_string_utf8(env, duckdb_library_version(), NAPI_AUTO_LENGTH, &s) != napi_ok) return NULL;
  return s;
}

static napi_value init_module(napi_env env, napi_value exports) {
  init_b64();
  napi_property_descriptor props[] = {
      {"register", NULL, js_register, NULL, NULL, NULL, napi_default, NULL},
      {"duckdbVersion", NULL, js_version, NULL, NULL, NULL, napi_default, NULL},
  };
  if (napi_define_properties(env, exports, 2, props) != napi_ok) return NULL;
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init_module)
