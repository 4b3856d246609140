/* cmd_repl.c: `visreg repl [RUN_DIR] [-e CODE]... [-i SCRIPT]`: Lua with the toolkit loaded (as `vr`).
 * This file does the terminal: readline's callback interface (so that Ctrl-C at the prompt clears the
 * line and any unfinished statement), Tab completion, the history file, and the signals; the Lua
 * half, lua/visreg/repl.lua, compiles and runs each input, prints results, completes names and
 * answers help() and ?NAME.
 *
 * Ctrl-C during a computation: SIGINT requests an interrupt (vr_interrupt_request); a count hook
 * (every 1000 VM instructions) raises "interrupted" in the Lua code that runs, and the core's long
 * loops stop with VR_E_INTERRUPTED; every global stays. Code typed at the prompt runs without the JIT
 * (repl.options.jit) because compiled loops do not call hooks. An error never ends the session.
 *
 * Without a terminal on stdin (piped input) there is no banner and no prompt: each complete
 * statement's results are printed, and the first error ends the process with status 1. */
#include "../core/host.h"
#include "../core/visreg.h"
#include "commands.h"
#include <ctype.h>
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

static const char USAGE[] =
    "usage: visreg repl [RUN_DIR] [-e CODE]... [-i SCRIPT] [--help]\n"
    "  Lua with the toolkit loaded as `vr`.\n"
    "  RUN_DIR     loads the run's recipe and checkpoint: globals r, trainer, enc, proj, ds\n"
    "  -e CODE     runs CODE (its values printed as at the prompt), then exits; status 1 on error\n"
    "  -i SCRIPT   runs SCRIPT, then stays interactive\n"
    "  -h, --help  this text\n"
    "At the prompt: help() lists what is loaded and the documented words, ?NAME shows one, Tab\n"
    "completes names, _ is the last result, a trailing ; prints nothing, Ctrl-C stops a computation\n"
    "or clears the line, Ctrl-D leaves. History: ~/.visreg_history ($VISREG_HISTORY), 1000 entries.\n"
    "With input piped in: each statement's results are printed, and the first error exits with 1.\n";

enum { HISTORY_MAX = 1000, HOOK_EVERY = 1000 };
enum { EVAL_OK, EVAL_INCOMPLETE, EVAL_ERROR };

static lua_State *LS;           /* the session (for the completion callback) */
static int repl_ref = LUA_NOREF; /* require "visreg.repl" */

/* ---------------------------------------------------------------- Ctrl-C */
static volatile sig_atomic_t evaluating, presses;

static void on_sigint(int sig) {
  (void)sig;
  vr_interrupt_request();
  if (evaluating && ++presses == 3) {
    static const char msg[] = "\nvisreg: still busy in code that does not look at Ctrl-C (JIT-compiled Lua or "
                              "one long C call); Ctrl-\\ quits\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
    (void)w;
  }
}

static void catch_sigint(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigint;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
}

/* the count hook: a pending interrupt becomes a Lua error where the code is */
static void on_count(lua_State *L, lua_Debug *ar) {
  (void)ar;
  if (!vr_interrupt_pending()) return;
  vr_interrupt_clear();
  lua_pushstring(L, "interrupted");
  lua_error(L);
}

/* message handler: the message (non-strings through tostring), with a traceback under VISREG_TRACEBACK */
static int message(lua_State *L) {
  if (!lua_isstring(L, 1)) {
    lua_getglobal(L, "tostring");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    if (!lua_isstring(L, -1)) lua_pushliteral(L, "(error object is not a string)");
    lua_replace(L, 1);
  }
  const char *tb = getenv("VISREG_TRACEBACK");
  if (tb && *tb && strcmp(tb, "0") != 0) luaL_traceback(L, L, lua_tostring(L, 1), 1);
  else lua_settop(L, 1);
  return 1;
}

/* calls repl[func](args...) with the nargs values on the stack, interruptible; EVAL_* */
static int call_repl(lua_State *L, const char *func, int nargs) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, message);
  lua_insert(L, base + 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl_ref);
  lua_getfield(L, -1, func);
  lua_remove(L, -2);
  lua_insert(L, base + 2); /* message, func, args... */
  presses = 0; /* (a Ctrl-C since the input was read still counts) */
  evaluating = 1;
  lua_sethook(L, on_count, LUA_MASKCOUNT, HOOK_EVERY);
  int rc = lua_pcall(L, nargs, 1, base + 1);
  lua_sethook(L, NULL, 0, 0);
  evaluating = 0;
  fflush(stdout);
  int res = EVAL_OK;
  if (rc != 0) {
    const char *msg = lua_tostring(L, -1);
    if (presses && isatty(STDERR_FILENO)) fputc('\n', stderr); /* after the terminal's ^C */
    fprintf(stderr, "%s\n", msg ? msg : "(error)");
    fflush(stderr);
    res = EVAL_ERROR;
  } else if (lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), "incomplete") == 0) {
    res = EVAL_INCOMPLETE;
  }
  vr_interrupt_clear();
  lua_settop(L, base);
  return res;
}

static int eval(lua_State *L, const char *src, const char *chunkname, int final) {
  lua_pushstring(L, src);
  lua_pushstring(L, chunkname);
  lua_pushboolean(L, final);
  return call_repl(L, "eval", 3);
}

/* ---------------------------------------------------------------- statements */
/* buf + "\n" + line (or line alone), or NULL when memory runs out (buf is then freed) */
static char *append_line(char *buf, const char *line) {
  size_t a = buf ? strlen(buf) : 0, b = strlen(line);
  char *nb = realloc(buf, a + b + 2);
  if (!nb) {
    free(buf);
    return NULL;
  }
  if (a) nb[a++] = '\n';
  memcpy(nb + a, line, b + 1);
  return nb;
}

static int blank(const char *s) {
  for (; *s; s++)
    if (!isspace((unsigned char)*s)) return 0;
  return 1;
}

/* ---------------------------------------------------------------- completion */
static char word_breaks[128];

/* repl.complete(the line up to the cursor): full names replacing the word being completed */
static char **complete(const char *text, int start, int end) {
  (void)text;
  (void)start;
  rl_attempted_completion_over = 1; /* never file names */
  rl_completion_append_character = '\0';
  lua_State *L = LS;
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, repl_ref);
  lua_getfield(L, -1, "complete");
  lua_pushlstring(L, rl_line_buffer, (size_t)end);
  if (lua_pcall(L, 1, 1, 0) != 0 || !lua_istable(L, -1)) {
    lua_settop(L, top);
    return NULL;
  }
  int n = (int)lua_objlen(L, -1);
  char **m = n > 0 ? calloc((size_t)n + 2, sizeof *m) : NULL;
  if (!m) {
    lua_settop(L, top);
    return NULL;
  }
  int k = 0;
  for (int i = 1; i <= n; i++) {
    lua_rawgeti(L, -1, i);
    const char *s = lua_tostring(L, -1);
    if (s && (m[k + 1] = strdup(s))) k++;
    lua_pop(L, 1);
  }
  lua_settop(L, top);
  if (k == 0) {
    free(m);
    return NULL;
  }
  if (k == 1) {
    m[0] = m[1];
    m[1] = NULL;
    return m;
  }
  size_t lcp = strlen(m[1]);
  for (int i = 2; i <= k; i++) {
    size_t j = 0;
    while (j < lcp && m[i][j] == m[1][j]) j++;
    lcp = j;
  }
  m[0] = strndup(m[1], lcp);
  if (!m[0]) {
    for (int i = 1; i <= k; i++) free(m[i]);
    free(m);
    return NULL;
  }
  return m;
}

/* the candidates listed by their last name (vr.nn.mlp as mlp) */
static void show_matches(char **matches, int num, int max_length) {
  (void)max_length;
  char **names = calloc((size_t)num + 2, sizeof *names);
  if (!names) return;
  names[0] = matches[0];
  int longest = 0;
  for (int i = 1; i <= num; i++) {
    const char *s = matches[i];
    const char *dot = strrchr(s, '.'), *colon = strrchr(s, ':');
    const char *cut = dot > colon ? dot : colon;
    names[i] = (char *)(cut ? cut + 1 : s);
    int len = (int)strlen(names[i]);
    if (len > longest) longest = len;
  }
  rl_display_match_list(names, num, longest);
  rl_forced_update_display();
  free(names);
}

/* ---------------------------------------------------------------- history */
static char history_path[4096];

static const char *find_history(void) {
  const char *env = getenv("VISREG_HISTORY");
  if (env && *env) {
    snprintf(history_path, sizeof history_path, "%s", env);
    return history_path;
  }
  const char *home = getenv("HOME");
  if (!home || !*home) return NULL;
  snprintf(history_path, sizeof history_path, "%s/.visreg_history", home);
  return history_path;
}

/* this session's entries added to what the file holds now (other sessions may have written it),
 * the last HISTORY_MAX kept */
static void save_history(const char *path, int added) {
  if (!path) return;
  int n = history_length;
  if (added > n) added = n;
  char **mine = added > 0 ? calloc((size_t)added, sizeof *mine) : NULL;
  int kept = 0;
  for (int i = n - added; mine && i < n; i++) {
    HIST_ENTRY *e = history_get(history_base + i);
    if (e && e->line && (mine[kept] = strdup(e->line))) kept++;
  }
  clear_history();
  read_history(path);
  for (int i = 0; i < kept; i++) {
    add_history(mine[i]);
    free(mine[i]);
  }
  free(mine);
  stifle_history(HISTORY_MAX);
  if (write_history(path) != 0) fprintf(stderr, "visreg: cannot write the history file %s\n", path);
}

/* ---------------------------------------------------------------- the interactive loop */
static char *got_line;
static int got_eof, have_line;

static void on_line(char *line) {
  if (!line) {
    got_eof = 1;
    return;
  }
  got_line = line;
  have_line = 1;
}

static int interactive(lua_State *L) {
  const char *hist = find_history();
  rl_readline_name = "visreg";
  rl_catch_signals = 0; /* SIGINT is ours: see the loop */
  /* a name is letters, digits, _ . and : (so that vr.nn.ml completes as one word) */
  int nb = 0;
  for (int c = ' ' + 1; c < 127; c++)
    if (!isalnum(c) && c != '_' && c != '.' && c != ':') word_breaks[nb++] = (char)c;
  memcpy(word_breaks + nb, " \t\n", 4);
  rl_completer_word_break_characters = word_breaks;
  rl_basic_word_break_characters = word_breaks;
  rl_attempted_completion_function = complete;
  rl_completion_display_matches_hook = show_matches;
  using_history();
  history_comment_char = '#'; /* timestamps ("#1700000000" lines) keep a multi-line statement one entry */
  history_write_timestamps = 1;
  history_multiline_entries = 1;
  if (hist) read_history(hist);
  stifle_history(HISTORY_MAX);
  int added = 0;

  printf("visreg repl: Lua with the toolkit as `vr`; help() lists what is loaded, Ctrl-D leaves\n");
  fflush(stdout);
  char *stmt = NULL;
  sigset_t intmask, oldmask;
  sigemptyset(&intmask);
  sigaddset(&intmask, SIGINT);
  rl_callback_handler_install("> ", on_line);
  for (;;) {
    sigprocmask(SIG_BLOCK, &intmask, &oldmask);
    if (vr_interrupt_pending()) { /* Ctrl-C at the prompt: the line and the unfinished statement go */
      vr_interrupt_clear();
      sigprocmask(SIG_SETMASK, &oldmask, NULL);
      free(stmt);
      stmt = NULL;
      rl_free_line_state();
      rl_callback_sigcleanup();
      rl_replace_line("", 0);
      fputs("^C", rl_outstream ? rl_outstream : stdout);
      rl_crlf();
      rl_set_prompt("> ");
      rl_on_new_line();
      rl_redisplay();
      continue;
    }
    int fd = fileno(rl_instream ? rl_instream : stdin);
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(fd, &fds);
    int r = pselect(fd + 1, &fds, NULL, NULL, NULL, &oldmask);
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    rl_callback_read_char();
    if (got_eof) break;
    if (!have_line) continue;
    have_line = 0;
    char *line = got_line;
    got_line = NULL;
    rl_callback_handler_remove(); /* the terminal as usual while the code runs */
    stmt = append_line(stmt, line);
    free(line);
    if (stmt && blank(stmt)) {
      free(stmt);
      stmt = NULL;
    } else if (stmt) {
      int res = eval(L, stmt, "=repl", 0);
      if (res != EVAL_INCOMPLETE) {
        add_history(stmt);
        added++;
        free(stmt);
        stmt = NULL;
      }
    }
    rl_callback_handler_install(stmt ? ">> " : "> ", on_line);
  }
  rl_callback_handler_remove();
  free(stmt);
  printf("\n");
  fflush(stdout);
  save_history(hist, added);
  return 0;
}

/* ---------------------------------------------------------------- piped input */
static int piped(lua_State *L) {
  char *line = NULL, *stmt = NULL;
  size_t cap = 0;
  ssize_t len;
  int status = 0;
  while ((len = getline(&line, &cap, stdin)) >= 0) {
    if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
    stmt = append_line(stmt, line);
    if (!stmt) {
      fprintf(stderr, "visreg: out of memory\n");
      status = 1;
      break;
    }
    if (blank(stmt)) {
      free(stmt);
      stmt = NULL;
      continue;
    }
    int res = eval(L, stmt, "=repl", 0);
    if (res == EVAL_ERROR) {
      status = 1;
      break;
    }
    if (res == EVAL_OK) {
      free(stmt);
      stmt = NULL;
    }
  }
  if (status == 0 && ferror(stdin)) {
    fprintf(stderr, errno == EINTR ? "interrupted\n" : "visreg: cannot read the input\n");
    status = 1;
  } else if (status == 0 && stmt && eval(L, stmt, "=repl", 1) == EVAL_ERROR) {
    status = 1; /* the input ended inside a statement */
  }
  free(line);
  free(stmt);
  return status;
}

/* ---------------------------------------------------------------- the command */
int vr_cmd_repl(int argc, char **argv) {
  const char *run_dir = NULL, *script = NULL;
  int ncode = 0;
  const char **codes = calloc((size_t)argc + 1, sizeof *codes);
  if (!codes) return 1;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(USAGE, stdout);
      free(codes);
      return 0;
    } else if (strcmp(a, "-e") == 0 || strcmp(a, "-i") == 0) {
      if (i + 1 >= argc) {
        fprintf(stderr, "visreg repl: %s needs a value\n%s", a, USAGE);
        free(codes);
        return 2;
      }
      if (a[1] == 'e') codes[ncode++] = argv[++i];
      else script = argv[++i];
    } else if (a[0] == '-' && a[1]) {
      fprintf(stderr, "visreg repl: unknown option %s\n%s", a, USAGE);
      free(codes);
      return 2;
    } else if (run_dir) {
      fprintf(stderr, "visreg repl: expected one run folder, got %s and %s\n%s", run_dir, a, USAGE);
      free(codes);
      return 2;
    } else {
      run_dir = a;
    }
  }
  int tty = isatty(STDIN_FILENO);
  int stays = script || ncode == 0; /* -e alone runs and exits */
  lua_State *L = vr_host_new();
  if (!L) {
    free(codes);
    return 1;
  }
  LS = L;
  int status = 1;
  lua_getglobal(L, "require");
  lua_pushstring(L, "visreg");
  if (vr_host_pcall(L, 1, 1)) goto done;
  lua_setglobal(L, "vr");
  if (run_dir) {
    char *args[2] = {(char *)run_dir, (char *)((stays && tty) ? "" : "--quiet")};
    if (vr_host_call_module(L, "visreg.cli", "repl_setup", 2, args) != 0) goto done;
  }
  lua_getglobal(L, "require");
  lua_pushstring(L, "visreg.repl");
  if (vr_host_pcall(L, 1, 1)) goto done;
  repl_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (call_repl(L, "start", 0) != EVAL_OK) goto done;
  catch_sigint();

  for (int i = 0; i < ncode; i++)
    if (eval(L, codes[i], "=(command line)", 1) != EVAL_OK) goto done;
  if (script) {
    vr_host_add_script_dir(L, script);
    lua_createtable(L, 0, 1);
    lua_pushstring(L, script);
    lua_rawseti(L, -2, 0);
    lua_setglobal(L, "arg");
    lua_pushstring(L, script);
    if (call_repl(L, "dofile", 1) != EVAL_OK && !tty) goto done; /* an error: still interactive */
  }
  if (!stays) status = 0;
  else status = tty ? interactive(L) : piped(L);
done:
  signal(SIGINT, SIG_DFL);
  if (repl_ref != LUA_NOREF) luaL_unref(L, LUA_REGISTRYINDEX, repl_ref);
  repl_ref = LUA_NOREF;
  LS = NULL;
  vr_host_close(L);
  free(codes);
  return status;
}
