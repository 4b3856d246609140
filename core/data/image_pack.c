/* image_pack.c: an image set decoded once into a packed cache folder, and the cache read back as
 * a dataset.
 *
 * The cache folder (format 1; all integers little-endian):
 *   shard-NNNNNN.bin  images [k*P, min(n, (k+1)*P)) of the set (P = per_shard), each resized and
 *                     centre-cropped to 3 x size x size u8:
 *                       64-byte header: "VRIMGSH1", u64 set hash, u32 shard, u32 first image, u32 count,
 *                       u32 channels (3), u32 size, u32 per_shard, u32 reasons bytes, zero padding
 *                       count status bytes: 0 decoded, 1 decoded from a grey file, 2 skipped
 *                       count x 3 x size x size pixels (zeros for a skipped file)
 *                       the skip reasons: "image index<TAB>reason\n" lines
 *   skipped.txt       "relative/path<TAB>reason" lines for the files that were skipped
 *   index.txt         written last, so its presence means a complete cache: the format line, the
 *                     hash, size, counts, per_shard, shards, the source root, the class names
 *                     ("class<TAB>name") and every source file ("image<TAB>label<TAB>status<TAB>path")
 *   .lock             flock()ed while packing, so that processes started together (a sweep's
 *                     trials) pack once: the others wait and then read the cache
 * Each shard is written to a temporary file and renamed, so a finished shard is whole; its header
 * records which set (hash) and which range it holds. An interrupted pack (Ctrl-C: the interrupt
 * request, read between images) leaves its finished shards; the next pack of the same set keeps
 * every shard whose header and length check out and makes the rest, so the result is the same
 * bytes as an uninterrupted pack. A set whose hash differs (files added, removed, modified: size or
 * mtime) invalidates the index and every shard (their headers hold the old hash): nothing is mixed.
 *
 * Loading reads the shards into one u8 N x C x size x size tensor (read, not mmap: a tensor owns
 * its storage) and the labels from the index; skipped files are left out. */
#include "image.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHARD_MAGIC "VRIMGSH1"
#define SHARD_HDR 64
enum { ST_OK = 0, ST_GREY = 1, ST_SKIP = 2 };

uint64_t vr_image_set_hash64(const vr_image_set *s, int size);
/* tests: called after each shard is written (the shard's number); may raise an interrupt */
void (*vr_image_pack_shard_hook)(int64_t shard) = NULL;

static double now_s(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec * 1e-9;
}

static void put32(unsigned char *p, uint32_t v) {
  for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> 8 * k);
}
static void put64(unsigned char *p, uint64_t v) {
  for (int k = 0; k < 8; k++) p[k] = (unsigned char)(v >> 8 * k);
}
static uint32_t get32(const unsigned char *p) {
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static vr_status mkdir_p(const char *path) {
  char b[4096];
  if ((size_t)snprintf(b, sizeof b, "%s", path) >= sizeof b) return VR_FAIL(VR_E_ARG, "cache_dir: path too long");
  for (char *p = b + 1; *p; p++)
    if (*p == '/') {
      *p = 0;
      if (mkdir(b, 0777) && errno != EEXIST)
        return VR_FAIL(VR_E_IO, "cache_dir: cannot make folder '%s': %s", b, strerror(errno));
      *p = '/';
    }
  if (mkdir(b, 0777) && errno != EEXIST) return VR_FAIL(VR_E_IO, "cache_dir: cannot make folder '%s': %s", b, strerror(errno));
  struct stat sb;
  if (stat(b, &sb) || !S_ISDIR(sb.st_mode)) return VR_FAIL(VR_E_IO, "cache_dir: '%s' is not a folder", b);
  return VR_OK;
}

/* ---------------------------------------------------------------- the packing job */

typedef struct shard_info {
  int done;          /* whole on disk */
  uint8_t *status;   /* count bytes */
  char *reasons;     /* "index\treason\n" lines */
  size_t reasons_len;
} shard_info;

typedef struct job {
  const vr_image_set *s;
  const char *dir;
  int size, strict, verbose;
  int64_t per, nshards;
  uint64_t hash;
  shard_info *sh;
  atomic_llong next;      /* next shard to consider */
  atomic_llong images;    /* images decoded in this run */
  atomic_int stop;        /* 1 interrupted, 2 strict failure, 3 I/O error */
  pthread_mutex_t mu;     /* stderr lines, err */
  vr_status err;
  char errmsg[1024];
} job;

static int64_t shard_count(const job *j, int64_t k) {
  int64_t first = k * j->per, n = j->s->n - first;
  return n < j->per ? n : j->per;
}

static void shard_path(const job *j, int64_t k, char *b, size_t n) { snprintf(b, n, "%s/shard-%06lld.bin", j->dir, (long long)k); }

static void set_error(job *j, int code, vr_status st, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void set_error(job *j, int code, vr_status st, const char *fmt, ...) {
  pthread_mutex_lock(&j->mu);
  if (!j->err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->errmsg, sizeof j->errmsg, fmt, ap);
    va_end(ap);
    j->err = st;
  }
  pthread_mutex_unlock(&j->mu);
  int z = 0;
  atomic_compare_exchange_strong(&j->stop, &z, code);
}

/* a shard on disk that holds exactly what this job would write; its status and reasons are read */
static int shard_valid(job *j, int64_t k) {
  char p[4200];
  shard_path(j, k, p, sizeof p);
  FILE *f = fopen(p, "rb");
  if (!f) return 0;
  unsigned char h[SHARD_HDR];
  int64_t cnt = shard_count(j, k);
  size_t img = (size_t)3 * j->size * j->size;
  int ok = fread(h, 1, SHARD_HDR, f) == SHARD_HDR && !memcmp(h, SHARD_MAGIC, 8) && get64(h + 8) == j->hash &&
           get32(h + 16) == (uint32_t)k && get32(h + 20) == (uint32_t)(k * j->per) && get32(h + 24) == (uint32_t)cnt &&
           get32(h + 28) == 3 && get32(h + 32) == (uint32_t)j->size && get32(h + 36) == (uint32_t)j->per;
  if (ok) {
    size_t rl = get32(h + 40);
    struct stat sb;
    ok = !fstat(fileno(f), &sb) && (uint64_t)sb.st_size == SHARD_HDR + (uint64_t)cnt * (1 + img) + rl;
    shard_info *si = &j->sh[k];
    if (ok) {
      si->status = malloc((size_t)cnt);
      si->reasons = malloc(rl + 1);
      ok = si->status && si->reasons && fread(si->status, 1, (size_t)cnt, f) == (size_t)cnt &&
           !fseeko(f, (off_t)(cnt * img), SEEK_CUR) && fread(si->reasons, 1, rl, f) == rl;
      if (ok) {
        si->reasons[rl] = 0;
        si->reasons_len = rl;
      } else {
        free(si->status);
        free(si->reasons);
        si->status = NULL;
        si->reasons = NULL;
      }
    }
  }
  fclose(f);
  return ok;
}

static void *pack_worker(void *arg) {
  job *j = arg;
  vr_img_decoder *d = vr_img_decoder_new();
  size_t img = (size_t)3 * j->size * j->size;
  uint8_t *buf = NULL;
  char *reasons = NULL;
  size_t rcap = 0;
  if (!d) {
    set_error(j, 3, VR_E_OOM, "out of host memory for the image decoder");
    return NULL;
  }
  for (;;) {
    if (atomic_load(&j->stop)) break;
    int64_t k = atomic_fetch_add(&j->next, 1);
    if (k >= j->nshards) break;
    if (j->sh[k].done) continue;
    int64_t cnt = shard_count(j, k), first = k * j->per;
    size_t bytes = SHARD_HDR + (size_t)cnt * (1 + img);
    uint8_t *nb = realloc(buf, bytes);
    if (!nb) {
      set_error(j, 3, VR_E_OOM, "out of host memory for a shard of %lld images", (long long)cnt);
      break;
    }
    buf = nb;
    memset(buf, 0, bytes);
    uint8_t *status = buf + SHARD_HDR, *px = status + cnt;
    size_t rl = 0;
    int64_t i;
    for (i = 0; i < cnt; i++) {
      if (vr_interrupt_pending()) {
        atomic_store(&j->stop, 1);
        break;
      }
      if (atomic_load(&j->stop)) break;
      int64_t gi = first + i;
      char path[8400], why[600];
      snprintf(path, sizeof path, "%s/%s", j->s->root, j->s->paths[gi]);
      int grey = 0;
      if (vr_img_load_fit(d, path, j->size, px + (size_t)i * img, &grey, why, sizeof why)) {
        status[i] = ST_SKIP;
        memset(px + (size_t)i * img, 0, img);
        if (j->strict) {
          set_error(j, 2, VR_E_FORMAT, "'%s': %s (strict: bad files are refused)", path, why);
          break;
        }
        if (j->verbose) {
          pthread_mutex_lock(&j->mu);
          fprintf(stderr, "%sskipped '%s': %s\n", j->verbose > 1 ? "\r\033[K" : "", path, why);
          pthread_mutex_unlock(&j->mu);
        }
        char line[700];
        int n = snprintf(line, sizeof line, "%lld\t%s\n", (long long)gi, why);
        if (n < 0 || (size_t)n >= sizeof line) n = (int)sizeof line - 1, line[n - 1] = '\n';
        if (rl + (size_t)n > rcap) {
          size_t nc = rcap * 2 + (size_t)n + 256;
          char *r = realloc(reasons, nc);
          if (!r) {
            set_error(j, 3, VR_E_OOM, "out of host memory");
            break;
          }
          reasons = r;
          rcap = nc;
        }
        memcpy(reasons + rl, line, (size_t)n);
        rl += (size_t)n;
      } else
        status[i] = grey ? ST_GREY : ST_OK;
      atomic_fetch_add(&j->images, 1);
    }
    if (i < cnt) break; /* stopped: the shard stays unwritten */
    memcpy(buf, SHARD_MAGIC, 8);
    put64(buf + 8, j->hash);
    put32(buf + 16, (uint32_t)k);
    put32(buf + 20, (uint32_t)first);
    put32(buf + 24, (uint32_t)cnt);
    put32(buf + 28, 3);
    put32(buf + 32, (uint32_t)j->size);
    put32(buf + 36, (uint32_t)j->per);
    put32(buf + 40, (uint32_t)rl);
    char fin[4200], tmp[4300];
    shard_path(j, k, fin, sizeof fin);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%lld", fin, (int)getpid(), (long long)k);
    FILE *f = fopen(tmp, "wb");
    int ok = f && fwrite(buf, 1, bytes, f) == bytes && (!rl || fwrite(reasons, 1, rl, f) == rl);
    if (f && fclose(f)) ok = 0;
    if (!ok || rename(tmp, fin)) {
      int e = errno;
      unlink(tmp);
      set_error(j, 3, VR_E_IO, "cannot write '%s': %s", fin, strerror(e));
      break;
    }
    shard_info *si = &j->sh[k];
    si->status = malloc((size_t)cnt);
    si->reasons = malloc(rl + 1);
    if (!si->status || !si->reasons) {
      set_error(j, 3, VR_E_OOM, "out of host memory");
      break;
    }
    memcpy(si->status, status, (size_t)cnt);
    if (rl) memcpy(si->reasons, reasons, rl);
    si->reasons[rl] = 0;
    si->reasons_len = rl;
    si->done = 1;
    if (vr_image_pack_shard_hook) vr_image_pack_shard_hook(k);
  }
  free(buf);
  free(reasons);
  vr_img_decoder_free(d);
  return NULL;
}

/* ---------------------------------------------------------------- the index */

static int write_atomic(const char *path, const char *data, size_t n) {
  char tmp[4300];
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  FILE *f = fopen(tmp, "wb");
  int ok = f && fwrite(data, 1, n, f) == n;
  if (f && fclose(f)) ok = 0;
  if (!ok || rename(tmp, path)) {
    unlink(tmp);
    return -1;
  }
  return 0;
}

/* a growing string */
typedef struct sbuf {
  char *p;
  size_t n, cap;
  int oom;
} sbuf;
static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...) {
  if (b->oom) return;
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (n < 0) {
      b->oom = 1;
      return;
    }
    if (b->p && b->n + (size_t)n < b->cap) {
      b->n += (size_t)n;
      return;
    }
    size_t nc = (b->cap + (size_t)n + 1) * 2;
    char *q = realloc(b->p, nc);
    if (!q) {
      b->oom = 1;
      return;
    }
    b->p = q;
    b->cap = nc;
  }
}

static int read_index_hash(const char *dir, uint64_t *hash) {
  char p[4200];
  snprintf(p, sizeof p, "%s/index.txt", dir);
  FILE *f = fopen(p, "rb");
  if (!f) return -1;
  char line[256];
  int ok = fgets(line, sizeof line, f) && !strncmp(line, "visreg-image-cache 1", 20) && fgets(line, sizeof line, f) &&
           !strncmp(line, "hash ", 5);
  fclose(f);
  if (!ok) return -1;
  *hash = strtoull(line + 5, NULL, 16);
  return 0;
}

int vr_image_cache_valid(const vr_image_set *s, int size, const char *cache_dir) {
  uint64_t h;
  return s && cache_dir && !read_index_hash(cache_dir, &h) && h == vr_image_set_hash64(s, size);
}

/* removes shards past nshards and temporary files a killed run left */
static void sweep_dir(const char *dir, int64_t nshards) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d))) {
    long long k;
    int n = 0;
    char p[4400];
    if (sscanf(e->d_name, "shard-%lld.bin%n", &k, &n) == 1 && n > 0) {
      if (e->d_name[n] == 0 && k < nshards) continue;
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    } else if (strstr(e->d_name, ".tmp.")) {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
  }
  closedir(d);
}

static void fmt_time(double s, char *b, size_t n) {
  if (s < 0 || s > 1e7) snprintf(b, n, "?");
  else if (s < 60) snprintf(b, n, "%.0fs", s);
  else if (s < 3600) snprintf(b, n, "%dm%02ds", (int)s / 60, (int)s % 60);
  else snprintf(b, n, "%dh%02dm", (int)s / 3600, (int)s / 60 % 60);
}

vr_status vr_image_pack(const vr_image_set *s, int size, const char *cache_dir, int threads, int strict, int per_shard,
                        int verbose) {
  if (!s) return VR_FAIL(VR_E_ARG, "s: expected an image set, got NULL");
  if (!cache_dir || !*cache_dir) return VR_FAIL(VR_E_ARG, "cache_dir: expected a folder, got none");
  if (size < VR_IMG_MIN_SIDE || size > VR_IMG_MAX_SIZE)
    return VR_FAIL(VR_E_ARG, "size: expected %d..%d pixels, got %d", VR_IMG_MIN_SIDE, VR_IMG_MAX_SIZE, size);
  if (per_shard < 0) return VR_FAIL(VR_E_ARG, "per_shard: expected >= 0 (0: chosen from the count), got %d", per_shard);
  if (threads < 0) return VR_FAIL(VR_E_ARG, "threads: expected >= 0 (0: every core), got %d", threads);
  if (s->n == 0) return VR_FAIL(VR_E_ARG, "s: the image set is empty");
  VR_TRY(mkdir_p(cache_dir));
  char lockp[4200];
  snprintf(lockp, sizeof lockp, "%s/.lock", cache_dir);
  int lk = open(lockp, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
  if (lk < 0) return VR_FAIL(VR_E_IO, "cache_dir: cannot make '%s': %s", lockp, strerror(errno));
  if (flock(lk, LOCK_EX | LOCK_NB)) {
    if (verbose) fprintf(stderr, "waiting for another process that packs '%s'\n", cache_dir);
    while (flock(lk, LOCK_EX | LOCK_NB)) {
      if (vr_interrupt_pending()) {
        close(lk);
        return VR_INTERRUPTED("while waiting for another process to pack the cache");
      }
      usleep(100000);
    }
  }
  vr_status st = VR_OK;
  job j = {.s = s, .dir = cache_dir, .size = size, .strict = strict, .verbose = verbose};
  pthread_mutex_init(&j.mu, NULL);
  j.hash = vr_image_set_hash64(s, size);
  char path[4400];
  uint64_t oldh;
  if (!read_index_hash(cache_dir, &oldh)) {
    if (oldh == j.hash) goto unlock; /* packed meanwhile by another process, or already */
    snprintf(path, sizeof path, "%s/index.txt", cache_dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/skipped.txt", cache_dir);
    unlink(path);
    if (verbose) fprintf(stderr, "'%s' holds a cache of another version of '%s': packing it anew\n", cache_dir, s->root);
  }
  j.per = per_shard ? per_shard : (s->n + 31) / 32;
  if (!per_shard) { /* 16 to 1024 images, and at most 64 MiB of pixels, a shard */
    int64_t cap = (64ll << 20) / (3ll * size * size);
    if (cap > 1024) cap = 1024;
    if (cap < 16) cap = 16;
    j.per = j.per < 16 ? 16 : j.per > cap ? cap : j.per;
  }
  j.nshards = (s->n + j.per - 1) / j.per;
  sweep_dir(cache_dir, j.nshards);
  j.sh = calloc((size_t)j.nshards, sizeof *j.sh);
  if (!j.sh) {
    st = VR_FAIL(VR_E_OOM, "out of host memory");
    goto unlock;
  }
  int64_t have = 0, have_images = 0;
  for (int64_t k = 0; k < j.nshards; k++)
    if ((j.sh[k].done = shard_valid(&j, k))) have++, have_images += shard_count(&j, k);
  int nt = threads ? threads : vr_cpu_count();
  if (nt < 1) nt = 1;
  if (nt > j.nshards - have) nt = (int)(j.nshards - have);
  int tty = verbose && isatty(2);
  if (verbose) {
    if (have) fprintf(stderr, "resuming the pack of '%s' into '%s': %lld of %lld shards are done\n", s->root, cache_dir,
                      (long long)have, (long long)j.nshards);
    else if (have < j.nshards)
      fprintf(stderr, "packing %lld images of '%s' at %d px into '%s' (%d thread%s)\n", (long long)s->n, s->root, size,
              cache_dir, nt, nt == 1 ? "" : "s");
  }
  if (tty) j.verbose = 2;
  double t0 = now_s();
  if (have < j.nshards) {
    pthread_t *th = calloc((size_t)nt, sizeof *th);
    int started = 0;
    if (!th) {
      st = VR_FAIL(VR_E_OOM, "out of host memory");
      goto unlock;
    }
    for (; started < nt; started++)
      if (pthread_create(&th[started], NULL, pack_worker, &j)) break;
    if (!started) pack_worker(&j);
    /* progress: on a terminal one line redrawn twice a second, else a line every 10 s */
    int64_t todo = s->n - have_images;
    double last = t0;
    for (;;) {
      int alive = 0;
      int64_t done_images = atomic_load(&j.images);
      if (done_images < todo && !atomic_load(&j.stop)) alive = 1;
      if (!alive) break;
      usleep(50000);
      double t = now_s();
      if (verbose && t - last >= (tty ? 0.5 : 10.0)) {
        last = t;
        done_images = atomic_load(&j.images);
        double rate = done_images / (t - t0);
        char eta[32], el[32];
        fmt_time(rate > 0 ? (todo - done_images) / rate : -1, eta, sizeof eta);
        fmt_time(t - t0, el, sizeof el);
        pthread_mutex_lock(&j.mu);
        fprintf(stderr, "%spacking: %lld/%lld images (%.0f%%), %.0f images/s, %s elapsed, ETA %s%s", tty ? "\r\033[K" : "",
                (long long)(have_images + done_images), (long long)s->n, 100.0 * (have_images + done_images) / s->n,
                rate, el, eta, tty ? "" : "\n");
        pthread_mutex_unlock(&j.mu);
      }
    }
    for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
    free(th);
    if (tty) fprintf(stderr, "\r\033[K");
  }
  int stop = atomic_load(&j.stop);
  if (stop == 1 || vr_interrupt_pending()) {
    vr_interrupt_clear();
    int64_t nd = 0;
    for (int64_t k = 0; k < j.nshards; k++) nd += j.sh[k].done;
    st = VR_FAIL(VR_E_INTERRUPTED, "packing '%s' interrupted with %lld of %lld shards done in '%s': run it again to resume",
                 s->root, (long long)nd, (long long)j.nshards, cache_dir);
    goto unlock;
  }
  if (stop) {
    st = vr_error_set(j.err, __func__, __FILE__, __LINE__, "%s", j.errmsg);
    goto unlock;
  }
  for (int64_t k = 0; k < j.nshards; k++)
    if (!j.sh[k].done) {
      st = VR_FAIL(VR_E_INTERNAL, "shard %lld of '%s' was not written", (long long)k, cache_dir);
      goto unlock;
    }
  /* skipped.txt, then index.txt */
  sbuf sk = {0}, ix = {0};
  int64_t ok = 0, grey = 0, skipped = 0;
  for (int64_t k = 0; k < j.nshards; k++) {
    for (int64_t i = 0; i < shard_count(&j, k); i++) {
      uint8_t v = j.sh[k].status[i];
      ok += v != ST_SKIP;
      grey += v == ST_GREY;
      skipped += v == ST_SKIP;
    }
    for (char *l = j.sh[k].reasons; l && *l;) {
      char *e = strchr(l, '\n'), *tab = strchr(l, '\t');
      if (!e) break;
      long long gi = strtoll(l, NULL, 10);
      if (tab && tab < e && gi >= 0 && gi < s->n) sb_printf(&sk, "%s\t%.*s\n", s->paths[gi], (int)(e - tab - 1), tab + 1);
      l = e + 1;
    }
  }
  char abs_root[4096];
  if (!realpath(s->root, abs_root)) snprintf(abs_root, sizeof abs_root, "%s", s->root);
  sb_printf(&ix, "visreg-image-cache 1\nhash %016llx\nsize %d\nchannels 3\nimages %lld\nok %lld\nskipped %lld\ngrey %lld\n"
                 "per_shard %lld\nshards %lld\nroot %s\nclasses %d\n",
            (unsigned long long)j.hash, size, (long long)s->n, (long long)ok, (long long)skipped, (long long)grey,
            (long long)j.per, (long long)j.nshards, abs_root, s->num_classes);
  for (int c = 0; c < s->num_classes; c++) sb_printf(&ix, "class\t%s\n", s->class_names[c]);
  for (int64_t k = 0; k < j.nshards; k++)
    for (int64_t i = 0; i < shard_count(&j, k); i++) {
      int64_t gi = k * j.per + i;
      sb_printf(&ix, "image\t%lld\t%d\t%s\n", (long long)s->labels[gi], j.sh[k].status[i], s->paths[gi]);
    }
  if (sk.oom || ix.oom) st = VR_FAIL(VR_E_OOM, "out of host memory for the index");
  else {
    snprintf(path, sizeof path, "%s/skipped.txt", cache_dir);
    if (write_atomic(path, sk.p ? sk.p : "", sk.n)) st = VR_FAIL(VR_E_IO, "cannot write '%s': %s", path, strerror(errno));
    snprintf(path, sizeof path, "%s/index.txt", cache_dir);
    if (!st && write_atomic(path, ix.p, ix.n)) st = VR_FAIL(VR_E_IO, "cannot write '%s': %s", path, strerror(errno));
  }
  free(sk.p);
  free(ix.p);
  if (!st && verbose) {
    double t = now_s() - t0;
    int64_t made = atomic_load(&j.images);
    fprintf(stderr, "packed %lld images of '%s' (%lld decoded now in %.1f s, %.0f images/s)", (long long)ok, s->root,
            (long long)made, t, t > 0 ? made / t : 0.0);
    if (skipped) fprintf(stderr, "; %lld file%s skipped, listed in '%s/skipped.txt'", (long long)skipped,
                         skipped == 1 ? "" : "s", cache_dir);
    fprintf(stderr, "\n");
  }
unlock:
  if (j.sh)
    for (int64_t k = 0; k < j.nshards; k++) {
      free(j.sh[k].status);
      free(j.sh[k].reasons);
    }
  free(j.sh);
  pthread_mutex_destroy(&j.mu);
  flock(lk, LOCK_UN);
  close(lk);
  return st;
}

/* ---------------------------------------------------------------- loading */

vr_status vr_image_cache_load(const char *cache_dir, const char *expect_hash, int channels, int strict, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!cache_dir || !*cache_dir) return VR_FAIL(VR_E_ARG, "cache_dir: expected a folder, got none");
  if (channels != 0 && channels != 1 && channels != 3)
    return VR_FAIL(VR_E_ARG, "channels: expected 3, 1 or 0 (1 when every image is grey, else 3), got %d", channels);
  char path[4400];
  snprintf(path, sizeof path, "%s/index.txt", cache_dir);
  FILE *f = fopen(path, "rb");
  if (!f) return VR_FAIL(VR_E_IO, "cache_dir: '%s' holds no finished cache (no index.txt: %s)", cache_dir, strerror(errno));
  vr_status st = VR_OK;
  char *line = NULL;
  size_t lcap = 0;
  ssize_t len;
  long long hv[10] = {0}; /* size images ok skipped grey per_shard shards classes */
  unsigned long long hash = 0;
  int nl = 0;
  int64_t *labels = NULL, *all_labels = NULL;
  uint8_t *status = NULL, *buf = NULL;
  vr_tensor *img = NULL;
  FILE *sf = NULL;
  int64_t li = 0;
  int fmt_ok = 0;
  while ((len = getline(&line, &lcap, f)) >= 0) {
    nl++;
    if (len && line[len - 1] == '\n') line[--len] = 0;
    if (nl == 1) {
      fmt_ok = !strcmp(line, "visreg-image-cache 1");
      if (!fmt_ok) break;
      continue;
    }
    if (!strncmp(line, "image\t", 6)) {
      if (!all_labels) {
        if (hv[1] <= 0 || hv[1] > ((int64_t)1 << 31)) break;
        all_labels = malloc(sizeof(int64_t) * (size_t)hv[1]);
        status = malloc((size_t)hv[1]);
        if (!all_labels || !status) {
          st = VR_FAIL(VR_E_OOM, "out of host memory");
          goto done;
        }
      }
      char *e;
      long long l = strtoll(line + 6, &e, 10);
      if (li >= hv[1] || *e != '\t' || l < 0 || l >= hv[7]) {
        fmt_ok = 0;
        break;
      }
      all_labels[li] = l;
      status[li] = (uint8_t)strtol(e + 1, NULL, 10);
      li++;
      continue;
    }
    static const char *keys[] = {"size ", "images ", "ok ", "skipped ", "grey ", "per_shard ", "shards ", "classes "};
    for (int k = 0; k < 8; k++)
      if (!strncmp(line, keys[k], strlen(keys[k]))) hv[k] = strtoll(line + strlen(keys[k]), NULL, 10);
    if (!strncmp(line, "hash ", 5)) hash = strtoull(line + 5, NULL, 16);
  }
  fclose(f);
  f = NULL;
  long long size = hv[0], n = hv[1], nok = hv[2], nskip = hv[3], ngrey = hv[4], per = hv[5], nsh = hv[6];
  if (!fmt_ok || li != n || size < VR_IMG_MIN_SIDE || size > VR_IMG_MAX_SIZE || per <= 0 || nsh != (n + per - 1) / per ||
      nok + nskip != n || nok < 0 || ngrey > nok) {
    st = VR_FAIL(VR_E_FORMAT, "cache_dir: '%s' is not a visreg image cache of format 1 (or is damaged): pack it again", path);
    goto done;
  }
  if (expect_hash && *expect_hash && strtoull(expect_hash, NULL, 16) != hash) {
    st = VR_FAIL(VR_E_FORMAT, "cache_dir: '%s' holds hash %016llx, expected %s: the source changed, pack it again", path, hash,
                 expect_hash);
    goto done;
  }
  if (strict && nskip) {
    char first[1200] = "";
    snprintf(path, sizeof path, "%s/skipped.txt", cache_dir);
    FILE *k = fopen(path, "rb");
    if (k) {
      if (!fgets(first, sizeof first, k)) first[0] = 0;
      fclose(k);
      char *nlp = strchr(first, '\n');
      if (nlp) *nlp = 0;
      char *tab = strchr(first, '\t');
      if (tab) *tab = ':', memmove(tab + 2, tab + 1, strlen(tab + 1) + 1), tab[1] = ' ';
    }
    st = VR_FAIL(VR_E_FORMAT, "strict: %lld bad file%s in the source (listed in '%s'), the first: %s", nskip,
                 nskip == 1 ? "" : "s", path, first);
    goto done;
  }
  int c = channels == 0 ? (ngrey == nok ? 1 : 3) : channels;
  size_t imgsz = (size_t)3 * size * size;
  int64_t shape[4] = {nok, c, size, size};
  /* nok * 3 * size^2 fits: nok < 2^31 and size <= 4096 give < 2^56 */
  VR_TRYG(vr_tensor_alloc(4, shape, VR_U8, VR_CPU, &img));
  labels = malloc(sizeof(int64_t) * (size_t)(nok ? nok : 1));
  buf = malloc(imgsz * (size_t)per);
  if (!labels || !buf) {
    st = VR_FAIL(VR_E_OOM, "out of host memory for a shard of %lld images", per);
    goto done;
  }
  uint8_t *dst = vr_data(img);
  int64_t o = 0;
  size_t plane = (size_t)size * size;
  for (long long k = 0; k < nsh; k++) {
    long long first = k * per, cnt = n - first < per ? n - first : per;
    snprintf(path, sizeof path, "%s/shard-%06lld.bin", cache_dir, k);
    sf = fopen(path, "rb");
    unsigned char h[SHARD_HDR];
    if (!sf || fread(h, 1, SHARD_HDR, sf) != SHARD_HDR || memcmp(h, SHARD_MAGIC, 8) || get64(h + 8) != hash ||
        get32(h + 16) != (uint32_t)k || get32(h + 24) != (uint32_t)cnt || get32(h + 32) != (uint32_t)size ||
        fseeko(sf, (off_t)cnt, SEEK_CUR) || fread(buf, imgsz, (size_t)cnt, sf) != (size_t)cnt) {
      st = VR_FAIL(VR_E_FORMAT, "cache_dir: '%s' is missing, damaged or of another source: pack the cache again", path);
      goto done;
    }
    fclose(sf);
    sf = NULL;
    for (long long i = 0; i < cnt; i++) {
      int64_t gi = first + i;
      if (status[gi] == ST_SKIP) continue;
      if (o >= nok) break;
      const uint8_t *p = buf + (size_t)i * imgsz;
      uint8_t *q = dst + (size_t)o * c * plane;
      if (c == 3) memcpy(q, p, imgsz);
      else if (status[gi] == ST_GREY) memcpy(q, p, plane);
      else
        for (size_t t = 0; t < plane; t++)
          q[t] = (uint8_t)((299 * p[t] + 587 * p[plane + t] + 114 * p[2 * plane + t] + 500) / 1000);
      labels[o++] = all_labels[gi];
    }
  }
  if (o != nok) {
    st = VR_FAIL(VR_E_FORMAT, "cache_dir: '%s' lists %lld decoded images, its shards hold %lld: pack it again", cache_dir, nok,
                 (long long)o);
    goto done;
  }
  st = vr_dataset_make(img, labels, (int)hv[7], 1, out);
  img = NULL;
  labels = NULL;
done:
  if (f) fclose(f);
  if (sf) fclose(sf);
  free(line);
  free(labels);
  free(all_labels);
  free(status);
  free(buf);
  vr_tensor_free(img);
  return st;
}

/* ---------------------------------------------------------------- dataset helpers */

vr_status vr_dataset_class_counts(const vr_dataset *d, int n, int64_t *counts) {
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  if (!counts || n < d->num_classes)
    return VR_FAIL(VR_E_ARG, "counts: expected room for %d classes, got %d", d->num_classes, n);
  memset(counts, 0, sizeof(int64_t) * (size_t)n);
  for (int64_t i = 0; i < d->n; i++)
    if (d->labels[i] >= 0 && d->labels[i] < n) counts[d->labels[i]]++;
  return VR_OK;
}

vr_status vr_dataset_holdout(const vr_dataset *d, double fraction, int held_out, vr_dataset **out) {
  VR_CHECK_OUT(out);
  *out = NULL;
  if (!d) return VR_FAIL(VR_E_ARG, "d: expected a dataset, got NULL");
  if (!(fraction > 0 && fraction < 1)) return VR_FAIL(VR_E_ARG, "fraction: expected a number in (0, 1), got %g", fraction);
  int C = d->num_classes > 0 ? d->num_classes : 1;
  int64_t *seen = calloc((size_t)C, sizeof(int64_t));
  int64_t *idx = malloc(sizeof(int64_t) * (size_t)(d->n ? d->n : 1));
  if (!seen || !idx) {
    free(seen);
    free(idx);
    return VR_FAIL(VR_E_OOM, "out of host memory");
  }
  int64_t m = 0;
  for (int64_t i = 0; i < d->n; i++) {
    int64_t l = d->has_labels && d->labels[i] >= 0 && d->labels[i] < C ? d->labels[i] : 0;
    int64_t j = seen[l]++;
    /* image j of its class is held out when floor((j+1) f + 1/2) > floor(j f + 1/2): every 1/f-th,
     * spread evenly, the first at j = round(1/(2f)) - 1 (so a class of 1/(2f) images gives one) */
    int h = floor((j + 1) * fraction + 0.5) > floor(j * fraction + 0.5);
    if (h == (held_out != 0)) idx[m++] = i;
  }
  vr_status st = vr_dataset_subset(d, m, idx, out);
  free(seen);
  free(idx);
  return st;
}

/* ---------------------------------------------------------------- decode benchmark */

typedef struct bench_job {
  const vr_image_set *s;
  int size;
  int64_t n;
  atomic_llong next, ok, bad;
} bench_job;

static void *bench_worker(void *arg) {
  bench_job *b = arg;
  vr_img_decoder *d = vr_img_decoder_new();
  uint8_t *out = malloc((size_t)3 * b->size * b->size);
  if (d && out)
    for (;;) {
      int64_t i = atomic_fetch_add(&b->next, 1);
      if (i >= b->n || vr_interrupt_pending()) break;
      char path[8400], why[600];
      int grey;
      snprintf(path, sizeof path, "%s/%s", b->s->root, b->s->paths[i]);
      if (vr_img_load_fit(d, path, b->size, out, &grey, why, sizeof why)) atomic_fetch_add(&b->bad, 1);
      else atomic_fetch_add(&b->ok, 1);
    }
  free(out);
  vr_img_decoder_free(d);
  return NULL;
}

vr_status vr_image_decode_bench(const vr_image_set *s, int size, int threads, int64_t limit, double *seconds,
                                int64_t *decoded, int64_t *failed) {
  if (!s) return VR_FAIL(VR_E_ARG, "s: expected an image set, got NULL");
  if (!seconds || !decoded || !failed) return VR_FAIL(VR_E_ARG, "seconds, decoded, failed: expected output pointers");
  if (size < VR_IMG_MIN_SIDE || size > VR_IMG_MAX_SIZE)
    return VR_FAIL(VR_E_ARG, "size: expected %d..%d pixels, got %d", VR_IMG_MIN_SIDE, VR_IMG_MAX_SIZE, size);
  bench_job b = {.s = s, .size = size, .n = limit > 0 && limit < s->n ? limit : s->n};
  int nt = threads > 0 ? threads : vr_cpu_count();
  pthread_t *th = calloc((size_t)nt, sizeof *th);
  if (!th) return VR_FAIL(VR_E_OOM, "out of host memory");
  double t0 = now_s();
  int started = 0;
  for (; started < nt; started++)
    if (pthread_create(&th[started], NULL, bench_worker, &b)) break;
  if (!started) bench_worker(&b);
  for (int k = 0; k < started; k++) pthread_join(th[k], NULL);
  *seconds = now_s() - t0;
  free(th);
  *decoded = atomic_load(&b.ok);
  *failed = atomic_load(&b.bad);
  return VR_INTERRUPTED("decoding");
}
