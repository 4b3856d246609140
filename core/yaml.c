/* yaml.c: a YAML reader for configuration files (sweep grids), on libyaml's event API.
 *
 * The document becomes a flat array of nodes (scalars, sequences, maps) numbered in file order;
 * a container's children are a run of node ids in one shared array, so an alias is just the id of
 * the anchored node again: nothing is copied, and no "billion laughs" file can make the tree large.
 * Everything a sweep file can get wrong is an error naming NAME:LINE:COLUMN (1-based): libyaml's own
 * scanner and parser errors, tabs used for indentation, duplicate keys, non-scalar keys, more than
 * one document, unknown or recursive aliases, tags other than !!str, !!seq and !!map, nesting deeper
 * than VR_YAML_MAX_DEPTH and more than VR_YAML_MAX_NODES nodes and aliases. Keys are compared by
 * their text (`1:` and `"1":` are the same key), as the Lua side makes every key a string. */
#include "internal.h"
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define VR_YAML_MAX_DEPTH 64
#define VR_YAML_MAX_NODES 1000000
#define VR_YAML_MAX_BYTES ((size_t)1 << 30)

typedef struct {
  int kind;   /* VR_YAML_SCALAR, VR_YAML_SEQ or VR_YAML_MAP */
  int line, col;
  int plain;
  int n;      /* items of a sequence, pairs of a map */
  size_t off; /* scalars: text offset in y->text; containers: first child in y->kid */
  size_t len; /* scalars: text length */
} ynode;

struct vr_yaml {
  ynode *node;
  size_t n, cap;
  int *kid; /* sequences: items; maps: key, value, key, value, ... */
  size_t nkid, ckid;
  char *text; /* every scalar's text, each NUL-terminated */
  size_t ntext, ctext;
  int root;
};

/* p (of *cap elements of elem bytes) grown to hold need > 0 elements, or NULL on overflow or
 * when out of memory (p is then still valid) */
static void *grown(void *p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap) return p;
  size_t nc = *cap ? *cap : 16;
  while (nc < need) {
    if (nc > SIZE_MAX / 2) return NULL;
    nc *= 2;
  }
  if (nc > SIZE_MAX / elem) return NULL;
  void *q = realloc(p, nc * elem);
  if (q) *cap = nc;
  return q;
}

/* ---- a small open-addressing hash table: anchors by name, map keys by (map, text) ---- */
typedef struct {
  uint64_t h;
  int a, b;        /* anchors: a = node; keys: a = map node, b = key node */
  size_t off, len; /* anchors: the name in the builder's name arena */
} entry;

typedef struct {
  entry *e;
  size_t n, cap;
  int *slot;    /* 0: empty, else entry index + 1 */
  size_t nslot; /* a power of two, at least twice n */
} table;

static const uint64_t fnv_basis = 14695981039346656037ull;
static uint64_t fnv(uint64_t h, const void *p, size_t n) {
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

struct builder;
/* what a lookup compares entries with */
typedef struct {
  const struct builder *b;
  const char *s;
  size_t len;
  int map;
} probe;
typedef int (*entry_eq)(const probe *q, const entry *e);

/* the index of the entry with hash h that eq accepts, or -1 */
static int tab_find(const table *t, uint64_t h, entry_eq eq, const probe *q) {
  if (!t->nslot) return -1;
  size_t m = t->nslot - 1;
  for (size_t i = (size_t)h & m; t->slot[i]; i = (i + 1) & m) {
    const entry *e = &t->e[t->slot[i] - 1];
    if (e->h == h && eq(q, e)) return t->slot[i] - 1;
  }
  return -1;
}

/* adds e (known to be absent); 0 when out of memory */
static int tab_add(table *t, const entry *e) {
  entry *ne = grown(t->e, &t->cap, t->n + 1, sizeof(entry));
  if (!ne) return 0;
  t->e = ne;
  if ((t->n + 1) * 2 > t->nslot) {
    size_t ns = t->nslot ? t->nslot * 2 : 64;
    int *s = ns <= SIZE_MAX / sizeof(int) ? calloc(ns, sizeof(int)) : NULL;
    if (!s) return 0;
    for (size_t k = 0; k < t->n; k++) {
      size_t i = (size_t)t->e[k].h & (ns - 1);
      while (s[i]) i = (i + 1) & (ns - 1);
      s[i] = (int)k + 1;
    }
    free(t->slot);
    t->slot = s;
    t->nslot = ns;
  }
  size_t i = (size_t)e->h & (t->nslot - 1);
  while (t->slot[i]) i = (i + 1) & (t->nslot - 1);
  t->e[t->n] = *e;
  t->slot[i] = (int)++t->n;
  return 1;
}

static void tab_free(table *t) {
  free(t->e);
  free(t->slot);
}

/* ---- the builder: the open containers, and what checking keys and aliases needs ---- */
typedef struct {
  int node;
  size_t start;                  /* its children so far are pend[start..] */
  int anchored;                  /* its anchor is defined when it closes (no recursive structures) */
  size_t anchor_off, anchor_len; /* in names */
} frame;

typedef struct builder {
  const char *func, *name, *src;
  size_t srclen;
  vr_yaml *y;
  int *pend; /* the children of the open containers, innermost last */
  size_t npend, cpend;
  frame fr[VR_YAML_MAX_DEPTH];
  int depth;
  table anchors, keys;
  char *names; /* anchor names, back to back */
  size_t nnames, cnames;
  size_t count; /* nodes and aliases so far */
} builder;

static int clamp_int(size_t v) { return v > (size_t)INT32_MAX - 1 ? INT32_MAX - 1 : (int)v; }

/* records "NAME:LINE:COL: what" as a VR_E_FORMAT error (src_line: the line of yaml.c that found it) */
__attribute__((format(printf, 5, 6)))
static vr_status fail_at(const builder *b, int src_line, int line, int col, const char *fmt, ...) {
  char what[600];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return vr_error_set(VR_E_FORMAT, b->func, __FILE__, src_line, "%s:%d:%d: %s", b->name, line, col, what);
}
/* the same at a libyaml mark (0-based) */
#define FAIL_MARK(b, m, ...) fail_at((b), __LINE__, clamp_int((m).line) + 1, clamp_int((m).column) + 1, __VA_ARGS__)

static vr_status oom(const builder *b) {
  return vr_error_set(VR_E_OOM, b->func, __FILE__, __LINE__, "%s: out of host memory", b->name);
}

/* s for a message: at most 60 bytes, control characters as '?' */
static const char *shown(const char *s, size_t n, char *buf, size_t cap) {
  size_t k = 0, lim = n < 60 ? n : 60;
  for (; k < lim && k + 4 < cap; k++) buf[k] = (unsigned char)s[k] < 0x20 || s[k] == 0x7f ? '?' : s[k];
  if (k < n && k + 4 < cap) {
    memcpy(buf + k, "...", 3);
    k += 3;
  }
  buf[k] = 0;
  return buf;
}

static const char *kind_name(int kind) {
  return kind == VR_YAML_SEQ ? "a sequence" : kind == VR_YAML_MAP ? "a map" : "a scalar";
}

/* Positions as libyaml counts them: CR, LF and CRLF end a line, a column is a UTF-8 character.
 * mark_of: the 0-based line and column of byte offset off; byte_at: the source byte at a mark
 * (-1 past the end) */
static yaml_mark_t mark_of(const builder *b, size_t off) {
  yaml_mark_t m = {0, 0, 0};
  const unsigned char *s = (const unsigned char *)b->src;
  for (size_t i = 0; i < off && i < b->srclen; i++) {
    if (s[i] == '\n' || (s[i] == '\r' && !(i + 1 < b->srclen && s[i + 1] == '\n'))) m.line++, m.column = 0;
    else if ((s[i] & 0xc0) != 0x80 && s[i] != '\r') m.column++;
  }
  return m;
}

static int byte_at(const builder *b, yaml_mark_t m) {
  const unsigned char *s = (const unsigned char *)b->src;
  size_t i = 0, n = b->srclen;
  for (size_t l = 0; l < m.line; l++) {
    while (i < n && s[i] != '\n' && s[i] != '\r') i++;
    if (i == n) return -1;
    if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') i++;
    i++;
  }
  for (size_t c = 0; c < m.column && i < n; c++) {
    i++;
    while (i < n && (s[i] & 0xc0) == 0x80) i++;
  }
  return i < n ? s[i] : -1;
}

/* libyaml's error with its position, and what it was parsing */
static vr_status parser_error(const builder *b, const yaml_parser_t *p) {
  if (p->error == YAML_MEMORY_ERROR) return oom(b);
  const char *problem = p->problem ? p->problem : "malformed YAML";
  if (p->error == YAML_READER_ERROR) { /* the reader knows a byte offset only */
    yaml_mark_t m = mark_of(b, p->problem_offset);
    if (p->problem_value != -1) return FAIL_MARK(b, m, "%s (0x%x)", problem, (unsigned)p->problem_value);
    return FAIL_MARK(b, m, "%s", problem);
  }
  yaml_mark_t m = p->problem_mark;
  int c = byte_at(b, m);
  if (c == '\t' || strstr(problem, "tab character")) return FAIL_MARK(b, m, "a tab character: YAML indents with spaces");
  /* at the end of a text without a final line break libyaml counts one more line: say where it ends */
  if (c == -1) m = mark_of(b, b->srclen);
  if (p->context)
    return FAIL_MARK(b, m, "%s (%s at line %d, column %d)", problem, p->context, clamp_int(p->context_mark.line) + 1,
                     clamp_int(p->context_mark.column) + 1);
  return FAIL_MARK(b, m, "%s", problem);
}

/* counts one more node or alias against the limit */
static vr_status count_one(builder *b, yaml_mark_t m) {
  if (b->count >= VR_YAML_MAX_NODES) return FAIL_MARK(b, m, "more than %d nodes and aliases", VR_YAML_MAX_NODES);
  b->count++;
  return VR_OK;
}

/* a new node of kind at mark m; *id receives its number */
static vr_status new_node(builder *b, int kind, yaml_mark_t m, int *id) {
  vr_yaml *y = b->y;
  VR_TRY(count_one(b, m));
  ynode *nn = grown(y->node, &y->cap, y->n + 1, sizeof(ynode));
  if (!nn) return oom(b);
  y->node = nn;
  ynode *nd = &y->node[y->n];
  memset(nd, 0, sizeof *nd);
  nd->kind = kind;
  nd->line = clamp_int(m.line) + 1;
  nd->col = clamp_int(m.column) + 1;
  *id = (int)y->n++;
  return VR_OK;
}

static int key_eq(const probe *q, const entry *e) {
  const ynode *o = &q->b->y->node[e->b];
  return e->a == q->map && o->len == q->len && !memcmp(q->b->y->text + o->off, q->s, q->len);
}

/* makes node id the next child of the innermost open container (or the root); m: where it appears */
static vr_status attach(builder *b, int id, yaml_mark_t m) {
  vr_yaml *y = b->y;
  if (b->depth == 0) {
    y->root = id;
    return VR_OK;
  }
  const frame *f = &b->fr[b->depth - 1];
  if (y->node[f->node].kind == VR_YAML_MAP && (b->npend - f->start) % 2 == 0) {
    const ynode *k = &y->node[id];
    if (k->kind != VR_YAML_SCALAR) return FAIL_MARK(b, m, "a map key must be a scalar, got %s", kind_name(k->kind));
    probe q = {b, y->text + k->off, k->len, f->node};
    uint64_t h = fnv(fnv(fnv_basis, &f->node, sizeof f->node), q.s, q.len);
    int dup = tab_find(&b->keys, h, key_eq, &q);
    if (dup >= 0) {
      char buf[80];
      return FAIL_MARK(b, m, "duplicate key '%s' (first at line %d)", shown(q.s, q.len, buf, sizeof buf),
                       y->node[b->keys.e[dup].b].line);
    }
    entry e = {h, f->node, id, 0, 0};
    if (!tab_add(&b->keys, &e)) return oom(b);
  }
  int *np = grown(b->pend, &b->cpend, b->npend + 1, sizeof(int));
  if (!np) return oom(b);
  b->pend = np;
  b->pend[b->npend++] = id;
  return VR_OK;
}

/* tags: the non-specific '!' and !!str make a scalar a string whatever it looks like; !!seq and
 * !!map say what the node is anyway; others (!!int, application tags) are refused rather than
 * silently ignored */
static vr_status check_tag(const builder *b, const yaml_char_t *tag, int kind, yaml_mark_t m, int *string) {
  *string = 0;
  if (!tag) return VR_OK;
  const char *t = (const char *)tag;
  if (kind == VR_YAML_SCALAR && (!strcmp(t, "!") || !strcmp(t, "tag:yaml.org,2002:str"))) {
    *string = 1;
    return VR_OK;
  }
  if ((kind == VR_YAML_SEQ && !strcmp(t, "tag:yaml.org,2002:seq")) ||
      (kind == VR_YAML_MAP && !strcmp(t, "tag:yaml.org,2002:map")))
    return VR_OK;
  const char *core = "tag:yaml.org,2002:";
  int is_core = !strncmp(t, core, strlen(core));
  if (is_core) t += strlen(core);
  char buf[80];
  return FAIL_MARK(b, m, "the tag '%s%s' is not supported on %s (only !!str, !!seq and !!map)", is_core ? "!!" : "",
                   shown(t, strlen(t), buf, sizeof buf), kind_name(kind));
}

static int anchor_eq(const probe *q, const entry *e) {
  return e->len == q->len && !memcmp(q->b->names + e->off, q->s, q->len);
}

static int find_anchor(const builder *b, const char *name, size_t len) {
  probe q = {b, name, len, 0};
  return tab_find(&b->anchors, fnv(fnv_basis, name, len), anchor_eq, &q);
}

/* keeps an anchor's name in the name arena */
static vr_status save_name(builder *b, const yaml_char_t *anchor, size_t *off, size_t *len) {
  size_t n = strlen((const char *)anchor);
  char *nn = n && n <= SIZE_MAX - b->nnames ? grown(b->names, &b->cnames, b->nnames + n, 1) : NULL;
  if (!nn) return oom(b);
  b->names = nn;
  memcpy(b->names + b->nnames, anchor, n);
  *off = b->nnames;
  *len = n;
  b->nnames += n;
  return VR_OK;
}

/* binds the saved name (off, len) to node; a later anchor of a name replaces an earlier one */
static vr_status define_anchor(builder *b, size_t off, size_t len, int node) {
  int k = find_anchor(b, b->names + off, len);
  if (k >= 0) {
    b->anchors.e[k].a = node;
    return VR_OK;
  }
  entry e = {fnv(fnv_basis, b->names + off, len), node, 0, off, len};
  return tab_add(&b->anchors, &e) ? VR_OK : oom(b);
}

static vr_status on_alias(builder *b, const yaml_event_t *ev) {
  const char *name = (const char *)ev->data.alias.anchor;
  size_t len = strlen(name);
  char buf[80];
  /* an open container's anchor is not defined yet: its name here would make a cycle */
  for (int d = b->depth - 1; d >= 0; d--)
    if (b->fr[d].anchored && b->fr[d].anchor_len == len && !memcmp(b->names + b->fr[d].anchor_off, name, len))
      return FAIL_MARK(b, ev->start_mark,
                       "the alias '*%s' is inside the node it names (recursive structures are not supported)",
                       shown(name, len, buf, sizeof buf));
  int k = find_anchor(b, name, len);
  if (k < 0) {
    shown(name, len, buf, sizeof buf);
    return FAIL_MARK(b, ev->start_mark, "unknown alias '*%s' (no anchor '&%s' before it)", buf, buf);
  }
  VR_TRY(count_one(b, ev->start_mark));
  return attach(b, b->anchors.e[k].a, ev->start_mark);
}

static vr_status on_scalar(builder *b, const yaml_event_t *ev) {
  vr_yaml *y = b->y;
  int string, id;
  VR_TRY(check_tag(b, ev->data.scalar.tag, VR_YAML_SCALAR, ev->start_mark, &string));
  size_t len = ev->data.scalar.length;
  char *nt = len < SIZE_MAX - y->ntext ? grown(y->text, &y->ctext, y->ntext + len + 1, 1) : NULL;
  if (!nt) return oom(b);
  y->text = nt;
  VR_TRY(new_node(b, VR_YAML_SCALAR, ev->start_mark, &id));
  ynode *nd = &y->node[id];
  nd->plain = !string && ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
  nd->off = y->ntext;
  nd->len = len;
  if (len) memcpy(y->text + y->ntext, ev->data.scalar.value, len);
  y->text[y->ntext + len] = 0;
  y->ntext += len + 1;
  VR_TRY(attach(b, id, ev->start_mark));
  if (ev->data.scalar.anchor) {
    size_t off, n;
    VR_TRY(save_name(b, ev->data.scalar.anchor, &off, &n));
    VR_TRY(define_anchor(b, off, n, id));
  }
  return VR_OK;
}

static vr_status on_start(builder *b, const yaml_event_t *ev, int kind) {
  const yaml_char_t *tag = kind == VR_YAML_SEQ ? ev->data.sequence_start.tag : ev->data.mapping_start.tag;
  const yaml_char_t *anchor = kind == VR_YAML_SEQ ? ev->data.sequence_start.anchor : ev->data.mapping_start.anchor;
  int string, id;
  VR_TRY(check_tag(b, tag, kind, ev->start_mark, &string));
  if (b->depth == VR_YAML_MAX_DEPTH) return FAIL_MARK(b, ev->start_mark, "nested deeper than %d levels", VR_YAML_MAX_DEPTH);
  VR_TRY(new_node(b, kind, ev->start_mark, &id));
  VR_TRY(attach(b, id, ev->start_mark));
  frame *f = &b->fr[b->depth++];
  memset(f, 0, sizeof *f);
  f->node = id;
  f->start = b->npend;
  if (anchor) {
    f->anchored = 1;
    VR_TRY(save_name(b, anchor, &f->anchor_off, &f->anchor_len));
  }
  return VR_OK;
}

static vr_status on_end(builder *b) {
  vr_yaml *y = b->y;
  const frame *f = &b->fr[--b->depth];
  size_t n = b->npend - f->start;
  if (n) {
    int *nk = n <= SIZE_MAX - y->nkid ? grown(y->kid, &y->ckid, y->nkid + n, sizeof(int)) : NULL;
    if (!nk) return oom(b);
    y->kid = nk;
    memcpy(y->kid + y->nkid, b->pend + f->start, n * sizeof(int));
  }
  ynode *nd = &y->node[f->node];
  nd->off = y->nkid;
  nd->n = (int)(nd->kind == VR_YAML_MAP ? n / 2 : n);
  y->nkid += n;
  b->npend = f->start;
  if (f->anchored) VR_TRY(define_anchor(b, f->anchor_off, f->anchor_len, f->node));
  return VR_OK;
}

static vr_status parse_events(builder *b, yaml_parser_t *p) {
  int documents = 0;
  for (;;) {
    yaml_event_t ev;
    if (!yaml_parser_parse(p, &ev)) return parser_error(b, p);
    vr_status st = VR_OK;
    int done = 0;
    switch (ev.type) {
    case YAML_DOCUMENT_START_EVENT:
      if (++documents > 1)
        st = FAIL_MARK(b, ev.start_mark, "a second document (a file holds one; '---' or '...' separates documents)");
      break;
    case YAML_SCALAR_EVENT: st = on_scalar(b, &ev); break;
    case YAML_ALIAS_EVENT: st = on_alias(b, &ev); break;
    case YAML_SEQUENCE_START_EVENT: st = on_start(b, &ev, VR_YAML_SEQ); break;
    case YAML_MAPPING_START_EVENT: st = on_start(b, &ev, VR_YAML_MAP); break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: st = on_end(b); break;
    case YAML_STREAM_END_EVENT: done = 1; break;
    default: break;
    }
    yaml_event_delete(&ev);
    if (st != VR_OK || done) return st;
  }
}

static vr_status parse_as(const char *func, const char *text, size_t len, const char *name, vr_yaml **out) {
  if (!out) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "out: expected an output pointer, got NULL");
  *out = NULL;
  if (!name) name = "<string>";
  if (!text && len) return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "text: expected %zu bytes, got NULL", len);
  if (len > VR_YAML_MAX_BYTES)
    return vr_error_set(VR_E_ARG, func, __FILE__, __LINE__, "%s: %zu bytes of YAML, expected at most %zu", name, len,
                        VR_YAML_MAX_BYTES);
  builder b;
  memset(&b, 0, sizeof b);
  b.func = func;
  b.name = name;
  b.src = text ? text : "";
  b.srclen = len;
  b.y = calloc(1, sizeof(vr_yaml));
  if (!b.y) return oom(&b);
  b.y->root = -1;
  yaml_parser_t p;
  vr_status st;
  if (!yaml_parser_initialize(&p)) {
    st = oom(&b);
  } else {
    yaml_parser_set_input_string(&p, (const unsigned char *)b.src, len);
    st = parse_events(&b, &p);
    yaml_parser_delete(&p);
  }
  free(b.pend);
  free(b.names);
  tab_free(&b.anchors);
  tab_free(&b.keys);
  if (st != VR_OK) {
    vr_yaml_free(b.y);
    return st;
  }
  *out = b.y;
  return VR_OK;
}

vr_status vr_yaml_parse(const char *text, size_t len, const char *name, vr_yaml **out) {
  return parse_as(__func__, text, len, name, out);
}

vr_status vr_yaml_load(const char *path, vr_yaml **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!path) return VR_FAIL(VR_E_ARG, "path: expected a file name, got NULL");
  FILE *f = fopen(path, "rb");
  if (!f) return VR_FAIL(VR_E_IO, "%s: cannot open: %s", path, strerror(errno));
  /* read to the end rather than by the file's size, so that pipes and /proc files work too */
  char *buf = NULL;
  size_t n = 0, cap = 0;
  vr_status st = VR_OK;
  for (;;) {
    if (n == cap) {
      char *nb = n < VR_YAML_MAX_BYTES ? grown(buf, &cap, n + 65536, 1) : NULL;
      if (!nb) {
        st = n < VR_YAML_MAX_BYTES ? VR_FAIL(VR_E_OOM, "%s: out of host memory", path)
                                   : VR_FAIL(VR_E_FORMAT, "%s: larger than %zu bytes, expected a configuration file",
                                             path, VR_YAML_MAX_BYTES);
        break;
      }
      buf = nb;
    }
    size_t got = fread(buf + n, 1, cap - n, f);
    n += got;
    if (got == 0) {
      if (ferror(f)) st = VR_FAIL(VR_E_IO, "%s: cannot read: %s", path, strerror(errno));
      break;
    }
  }
  fclose(f);
  if (st == VR_OK) st = parse_as(__func__, buf, n, path, out);
  free(buf);
  return st;
}

void vr_yaml_free(vr_yaml *y) {
  if (!y) return;
  free(y->node);
  free(y->kid);
  free(y->text);
  free(y);
}

static const ynode *node_of(const vr_yaml *y, int node) {
  return y && node >= 0 && (size_t)node < y->n ? &y->node[node] : NULL;
}

int vr_yaml_count(const vr_yaml *y) { return y ? (int)y->n : 0; }
int vr_yaml_root(const vr_yaml *y) { return y ? y->root : -1; }
int vr_yaml_kind(const vr_yaml *y, int node) {
  const ynode *nd = node_of(y, node);
  return nd ? nd->kind : 0;
}
const char *vr_yaml_text(const vr_yaml *y, int node) {
  const ynode *nd = node_of(y, node);
  return nd && nd->kind == VR_YAML_SCALAR ? y->text + nd->off : NULL;
}
size_t vr_yaml_length(const vr_yaml *y, int node) {
  const ynode *nd = node_of(y, node);
  return nd && nd->kind == VR_YAML_SCALAR ? nd->len : 0;
}
int vr_yaml_plain(const vr_yaml *y, int node) {
  const ynode *nd = node_of(y, node);
  return nd ? nd->plain : 0;
}
int vr_yaml_size(const vr_yaml *y, int node) {
  const ynode *nd = node_of(y, node);
  return nd ? nd->n : 0;
}
int vr_yaml_item(const vr_yaml *y, int node, int i) {
  const ynode *nd = node_of(y, node);
  if (!nd || nd->kind == VR_YAML_SCALAR || i < 0 || i >= nd->n) return -1;
  return y->kid[nd->off + (nd->kind == VR_YAML_MAP ? 2 * (size_t)i + 1 : (size_t)i)];
}
int vr_yaml_key(const vr_yaml *y, int node, int i) {
  const ynode *nd = node_of(y, node);
  if (!nd || nd->kind != VR_YAML_MAP || i < 0 || i >= nd->n) return -1;
  return y->kid[nd->off + 2 * (size_t)i];
}
int vr_yaml_line(const vr_yaml *y, int node) {
  const ynode *nd = node_of(y, node);
  return nd ? nd->line : 0;
}
int vr_yaml_column(const vr_yaml *y, int node) {
  const ynode *nd = node_of(y, node);
  return nd ? nd->col : 0;
}
