/* image_folder.c: image sets, the list of files a folder dataset is made of. A class-folder tree
 * (root/CLASS/...: class names sorted bytewise give labels 0..K-1; files found recursively in sorted
 * order; names starting with '.' ignored) or a list file of "relative/path label" lines. Each file's
 * size and mtime are taken here: with the paths, labels and class names they make the hash that
 * names a packed cache, so a changed folder is packed anew rather than mixed with an old cache.
 * Content is not looked at here: a non-image file is skipped (with its reason) when packed. */
#include "image.h"
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void vr_image_set_free(vr_image_set *s) {
  if (!s) return;
  for (int64_t i = 0; i < s->n; i++) free(s->paths[i]);
  for (int c = 0; c < s->num_classes; c++) free(s->class_names[c]);
  free(s->paths);
  free(s->labels);
  free(s->sizes);
  free(s->mtimes);
  free(s->class_names);
  free(s->root);
  free(s);
}

static vr_status set_new(const char *root, vr_image_set **out) {
  vr_image_set *s = calloc(1, sizeof *s);
  char abs[4096];
  /* the absolute path: it names the cache, and messages show where a file is */
  if (!realpath(root, abs)) snprintf(abs, sizeof abs, "%s", root);
  if (!s || !(s->root = strdup(abs))) {
    free(s);
    return VR_FAIL(VR_E_OOM, "out of host memory");
  }
  size_t n = strlen(s->root);
  while (n > 1 && s->root[n - 1] == '/') s->root[--n] = 0;
  *out = s;
  return VR_OK;
}

static vr_status set_add(vr_image_set *s, const char *rel, int64_t label, const struct stat *st) {
  if (s->n == s->cap) {
    int64_t cap = s->cap ? s->cap * 2 : 1024;
    char **p = realloc(s->paths, sizeof(char *) * (size_t)cap);
    if (p) s->paths = p;
    int64_t *l = realloc(s->labels, sizeof(int64_t) * (size_t)cap);
    if (l) s->labels = l;
    int64_t *z = realloc(s->sizes, sizeof(int64_t) * (size_t)cap);
    if (z) s->sizes = z;
    int64_t *m = realloc(s->mtimes, sizeof(int64_t) * (size_t)cap);
    if (m) s->mtimes = m;
    if (!p || !l || !z || !m) return VR_FAIL(VR_E_OOM, "out of host memory for %lld file names", (long long)cap);
    s->cap = cap;
  }
  char *r = strdup(rel);
  if (!r) return VR_FAIL(VR_E_OOM, "out of host memory");
  s->paths[s->n] = r;
  s->labels[s->n] = label;
  s->sizes[s->n] = st->st_size;
  s->mtimes[s->n] = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
  s->n++;
  return VR_OK;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* the sorted names in dir (no '.'-names); *n entries, free each and the array */
static vr_status list_dir(const char *dir, char ***names, int64_t *n) {
  *names = NULL;
  *n = 0;
  DIR *d = opendir(dir);
  if (!d) return VR_FAIL(VR_E_IO, "root: cannot open folder '%s': %s", dir, strerror(errno));
  int64_t cap = 0;
  char **v = NULL;
  struct dirent *e;
  while ((e = readdir(d))) {
    if (e->d_name[0] == '.') continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 64;
      char **nv = realloc(v, sizeof(char *) * (size_t)cap);
      if (!nv) goto oom;
      v = nv;
    }
    if (!(v[*n] = strdup(e->d_name))) goto oom;
    (*n)++;
  }
  closedir(d);
  if (*n) qsort(v, (size_t)*n, sizeof(char *), cmp_str);
  *names = v;
  return VR_OK;
oom:
  closedir(d);
  for (int64_t k = 0; k < *n; k++) free(v[k]);
  free(v);
  *n = 0;
  return VR_FAIL(VR_E_OOM, "out of host memory listing '%s'", dir);
}

static void free_names(char **v, int64_t n) {
  for (int64_t k = 0; k < n; k++) free(v[k]);
  free(v);
}

static int bad_name(const char *s) {
  for (; *s; s++)
    if (*s == '\n' || *s == '\r' || *s == '\t') return 1;
  return 0;
}

/* adds every regular file under root/rel (recursively, sorted) with label */
static vr_status walk(vr_image_set *s, const char *rel, int64_t label, int depth) {
  char dir[8192];
  if ((size_t)snprintf(dir, sizeof dir, "%s/%s", s->root, rel) >= sizeof dir)
    return VR_FAIL(VR_E_ARG, "root: path too long under '%s'", s->root);
  if (depth > 64) return VR_FAIL(VR_E_ARG, "root: folders nested more than 64 deep at '%s' (a symlink loop?)", dir);
  char **names;
  int64_t n;
  VR_TRY(list_dir(dir, &names, &n));
  vr_status st = VR_OK;
  for (int64_t k = 0; k < n && !st; k++) {
    char r[8192], full[8192];
    if ((size_t)snprintf(r, sizeof r, "%s/%s", rel, names[k]) >= sizeof r ||
        (size_t)snprintf(full, sizeof full, "%s/%s", s->root, r) >= sizeof full) {
      st = VR_FAIL(VR_E_ARG, "root: path too long: '%s/%s'", dir, names[k]);
      break;
    }
    if (bad_name(names[k])) {
      st = VR_FAIL(VR_E_ARG, "root: '%s' has a newline or tab in its name: rename it", full);
      break;
    }
    struct stat sb;
    if (stat(full, &sb)) continue; /* a dangling symlink: nothing to read */
    if (S_ISDIR(sb.st_mode)) st = walk(s, r, label, depth + 1);
    else if (S_ISREG(sb.st_mode)) st = set_add(s, r, label, &sb);
  }
  free_names(names, n);
  return st;
}

vr_status vr_image_set_folder(const char *root, const vr_image_set *classes_from, vr_image_set **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!root || !*root) return VR_FAIL(VR_E_ARG, "root: expected a folder of class folders, got none");
  struct stat sb;
  if (stat(root, &sb)) return VR_FAIL(VR_E_IO, "root: cannot open folder '%s': %s", root, strerror(errno));
  if (!S_ISDIR(sb.st_mode)) return VR_FAIL(VR_E_ARG, "root: '%s' is not a folder", root);
  vr_image_set *s;
  VR_TRY(set_new(root, &s));
  char **names = NULL;
  int64_t n = 0;
  vr_status st = list_dir(s->root, &names, &n);
  if (st) goto done;
  /* the class folders: the subfolders of root */
  int64_t nc = 0;
  for (int64_t k = 0; k < n; k++) {
    char full[8192];
    snprintf(full, sizeof full, "%s/%s", s->root, names[k]);
    if (!stat(full, &sb) && S_ISDIR(sb.st_mode)) names[nc++] = names[k];
    else free(names[k]);
  }
  n = nc;
  if (nc == 0) {
    st = VR_FAIL(VR_E_ARG, "root: '%s' holds no class folders (expected root/CLASS/image files)", s->root);
    goto done;
  }
  if (nc > 1 << 20) {
    st = VR_FAIL(VR_E_ARG, "root: '%s' holds %lld class folders, more than %d", s->root, (long long)nc, 1 << 20);
    goto done;
  }
  if (classes_from) {
    s->num_classes = classes_from->num_classes;
    s->class_names = calloc((size_t)s->num_classes, sizeof(char *));
    if (!s->class_names) {
      st = VR_FAIL(VR_E_OOM, "out of host memory");
      goto done;
    }
    for (int c = 0; c < s->num_classes; c++)
      if (!(s->class_names[c] = strdup(classes_from->class_names[c]))) {
        st = VR_FAIL(VR_E_OOM, "out of host memory");
        goto done;
      }
  } else {
    s->class_names = calloc((size_t)nc, sizeof(char *));
    if (!s->class_names) {
      st = VR_FAIL(VR_E_OOM, "out of host memory");
      goto done;
    }
    for (int64_t k = 0; k < nc; k++) s->class_names[k] = names[k], names[k] = NULL;
    s->num_classes = (int)nc;
  }
  for (int64_t k = 0; k < nc; k++) {
    const char *cname = classes_from ? names[k] : s->class_names[k];
    int label = (int)k;
    if (classes_from) {
      label = -1;
      for (int c = 0; c < s->num_classes; c++)
        if (!strcmp(s->class_names[c], cname)) label = c;
      if (label < 0) {
        st = VR_FAIL(VR_E_ARG, "root: class folder '%s/%s' is not a class of '%s' (whose classes come from its folders)",
                     s->root, cname, classes_from->root);
        goto done;
      }
    }
    int64_t before = s->n;
    if ((st = walk(s, cname, label, 0))) goto done;
    if (s->n == before) {
      st = VR_FAIL(VR_E_ARG, "root: class folder '%s/%s' holds no files", s->root, cname);
      goto done;
    }
  }
  if (s->n > ((int64_t)1 << 31)) {
    st = VR_FAIL(VR_E_ARG, "root: '%s' holds %lld files, more than 2^31", s->root, (long long)s->n);
    goto done;
  }
done:
  free_names(names, n);
  if (st) vr_image_set_free(s);
  else *out = s;
  return st;
}

/* a list file's path must stay under root: relative, no ".." component */
static int escapes_root(const char *p) {
  if (p[0] == '/') return 1;
  const char *c = p;
  while (*c) {
    const char *e = strchr(c, '/');
    size_t n = e ? (size_t)(e - c) : strlen(c);
    if (n == 2 && c[0] == '.' && c[1] == '.') return 1;
    if (!e) break;
    c = e + 1;
  }
  return 0;
}

vr_status vr_image_set_list(const char *root, const char *list_path, int num_classes, vr_image_set **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!root || !*root) return VR_FAIL(VR_E_ARG, "root: expected the folder the list's paths start from, got none");
  if (!list_path || !*list_path) return VR_FAIL(VR_E_ARG, "list_path: expected a list file, got none");
  if (num_classes < 0 || num_classes > VR_IMG_MAX_CLASSES)
    return VR_FAIL(VR_E_ARG, "num_classes: expected 0..%d, got %d", VR_IMG_MAX_CLASSES, num_classes);
  FILE *f = fopen(list_path, "rb");
  if (!f) return VR_FAIL(VR_E_IO, "list_path: cannot open '%s': %s", list_path, strerror(errno));
  vr_image_set *s;
  vr_status st = set_new(root, &s);
  if (st) {
    fclose(f);
    return st;
  }
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  int64_t lineno = 0, maxl = -1;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if ((size_t)len != strlen(line)) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: a NUL byte in the line (not a text list)", list_path, (long long)lineno);
      goto done;
    }
    while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r' || isspace((unsigned char)line[len - 1])))
      line[--len] = 0;
    char *p = line;
    while (*p && isspace((unsigned char)*p)) p++;
    if (!*p || *p == '#') continue;
    /* the label is the last field; the path everything before it (it may hold spaces) */
    char *sp = p + strlen(p);
    while (sp > p && !isspace((unsigned char)sp[-1])) sp--;
    if (sp == p) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: expected 'relative/path label', got '%s' (no label)", list_path,
                   (long long)lineno, p);
      goto done;
    }
    char *lab = sp;
    char *pe = sp;
    while (pe > p && isspace((unsigned char)pe[-1])) pe--;
    *pe = 0;
    char *end;
    errno = 0;
    long long v = strtoll(lab, &end, 10);
    if (*end || end == lab || errno || v < 0 || v >= VR_IMG_MAX_CLASSES) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: label '%s' of '%s': expected an integer 0..%d", list_path, (long long)lineno,
                   lab, p, num_classes ? num_classes - 1 : VR_IMG_MAX_CLASSES - 1);
      goto done;
    }
    if (num_classes && v >= num_classes) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: label %lld of '%s' is out of range: expected 0..%d (num_classes %d)", list_path,
                   (long long)lineno, v, p, num_classes - 1, num_classes);
      goto done;
    }
    if (escapes_root(p)) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: path '%s' leaves the root folder (absolute or with '..'): expected a path under '%s'",
                   list_path, (long long)lineno, p, s->root);
      goto done;
    }
    if (bad_name(p)) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: path '%s' holds a tab", list_path, (long long)lineno, p);
      goto done;
    }
    char full[8192];
    if ((size_t)snprintf(full, sizeof full, "%s/%s", s->root, p) >= sizeof full) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: path too long", list_path, (long long)lineno);
      goto done;
    }
    struct stat sb;
    if (stat(full, &sb)) {
      st = VR_FAIL(VR_E_IO, "%s:%lld: '%s': %s", list_path, (long long)lineno, full, strerror(errno));
      goto done;
    }
    if (!S_ISREG(sb.st_mode)) {
      st = VR_FAIL(VR_E_FORMAT, "%s:%lld: '%s' is not a regular file", list_path, (long long)lineno, full);
      goto done;
    }
    if ((st = set_add(s, p, v, &sb))) goto done;
    if (v > maxl) maxl = v;
  }
  if (ferror(f)) {
    st = VR_FAIL(VR_E_IO, "list_path: read error in '%s'", list_path);
    goto done;
  }
  if (s->n == 0) {
    st = VR_FAIL(VR_E_FORMAT, "list_path: '%s' lists no images", list_path);
    goto done;
  }
  s->num_classes = num_classes ? num_classes : (int)maxl + 1;
  s->class_names = calloc((size_t)s->num_classes, sizeof(char *));
  if (!s->class_names) {
    st = VR_FAIL(VR_E_OOM, "out of host memory");
    goto done;
  }
  for (int c = 0; c < s->num_classes; c++) {
    char b[32];
    snprintf(b, sizeof b, "%d", c);
    if (!(s->class_names[c] = strdup(b))) {
      st = VR_FAIL(VR_E_OOM, "out of host memory");
      goto done;
    }
  }
done:
  free(line);
  fclose(f);
  if (st) vr_image_set_free(s);
  else *out = s;
  return st;
}

vr_status vr_image_set_rename_classes(vr_image_set *s, int n, const char *const *names) {
  if (!s) return VR_FAIL(VR_E_ARG, "s: expected an image set, got NULL");
  if (n != s->num_classes || !names)
    return VR_FAIL(VR_E_ARG, "names: expected %d class names, got %d", s->num_classes, n);
  for (int c = 0; c < n; c++)
    if (!names[c] || !*names[c] || bad_name(names[c]))
      return VR_FAIL(VR_E_ARG, "names: element %d: expected a non-empty name without newline or tab", c);
  for (int c = 0; c < n; c++) {
    char *d = strdup(names[c]);
    if (!d) return VR_FAIL(VR_E_OOM, "out of host memory");
    free(s->class_names[c]);
    s->class_names[c] = d;
  }
  return VR_OK;
}

int64_t vr_image_set_count(const vr_image_set *s) { return s ? s->n : 0; }
int vr_image_set_num_classes(const vr_image_set *s) { return s ? s->num_classes : 0; }
const char *vr_image_set_root(const vr_image_set *s) { return s ? s->root : NULL; }
const char *vr_image_set_class_name(const vr_image_set *s, int cls) {
  return s && cls >= 0 && cls < s->num_classes ? s->class_names[cls] : NULL;
}
const char *vr_image_set_path(const vr_image_set *s, int64_t i) { return s && i >= 0 && i < s->n ? s->paths[i] : NULL; }
int64_t vr_image_set_label(const vr_image_set *s, int64_t i) { return s && i >= 0 && i < s->n ? s->labels[i] : -1; }

/* the format version of the packed cache: part of the hash, so a new format repacks */
#define VR_IMAGE_CACHE_VERSION 1

uint64_t vr_image_set_hash64(const vr_image_set *s, int size) {
  uint64_t h = VR_FNV_INIT;
  int64_t hdr[3] = {VR_IMAGE_CACHE_VERSION, size, s->n};
  h = vr_fnv1a(h, hdr, sizeof hdr);
  for (int c = 0; c < s->num_classes; c++) h = vr_fnv1a(h, s->class_names[c], strlen(s->class_names[c]) + 1);
  for (int64_t i = 0; i < s->n; i++) {
    h = vr_fnv1a(h, s->paths[i], strlen(s->paths[i]) + 1);
    int64_t v[3] = {s->labels[i], s->sizes[i], s->mtimes[i]};
    h = vr_fnv1a(h, v, sizeof v);
  }
  return h;
}

vr_status vr_image_set_hash(const vr_image_set *s, int size, char *hex17) {
  if (!s) return VR_FAIL(VR_E_ARG, "s: expected an image set, got NULL");
  if (!hex17) return VR_FAIL(VR_E_ARG, "hex17: expected a buffer of 17 bytes, got NULL");
  snprintf(hex17, 17, "%016llx", (unsigned long long)vr_image_set_hash64(s, size));
  return VR_OK;
}
