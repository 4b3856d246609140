/* host.c: the embedded LuaJIT interpreter. Sets package.path to the toolkit's lua/ folder, runs
 * scripts and module functions in protected calls with a traceback, and prints errors as
 * "visreg: file:line: message". The classic Lua C API is used here and nowhere else. */
#include "host.h"
#include "visreg.h"
#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int is_file(const char *p) {
  struct stat st;
  return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* The lua/ folder: $VISREG_LUA_PATH, else ../lua beside the executable, else ./lua. */
static int find_lua_dir(char *dir, size_t n) {
  char probe[PATH_MAX + 32];
  const char *env = getenv("VISREG_LUA_PATH");
  if (env && *env) {
    snprintf(dir, n, "%s", env);
    size_t len = strlen(dir);
    while (len > 1 && dir[len - 1] == '/') dir[--len] = 0;
    return 1;
  }
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    exe[len] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) {
      *slash = 0;
      snprintf(probe, sizeof probe, "%s/../lua/visreg/init.lua", exe);
      if (is_file(probe)) {
        char real[PATH_MAX];
        snprintf(probe, sizeof probe, "%s/../lua", exe);
        const char *found = realpath(probe, real) ? real : probe;
        size_t flen = strlen(found);
        if (flen < n) {
          memcpy(dir, found, flen + 1);
          return 1;
        }
      }
    }
  }
  if (is_file("lua/visreg/init.lua")) {
    snprintf(dir, n, "lua");
    return 1;
  }
  return 0;
}

static void prepend_path(lua_State *L, const char *dir) {
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  const char *old = lua_tostring(L, -1);
  lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;%s", dir, dir, old ? old : "");
  lua_setfield(L, -3, "path");
  lua_pop(L, 2);
}

lua_State *vr_host_new(void) {
  char dir[PATH_MAX];
  if (!find_lua_dir(dir, sizeof dir)) {
    fprintf(stderr, "visreg: cannot find the Lua library (lua/visreg/init.lua) beside the executable; "
                    "set VISREG_LUA_PATH to the lua/ folder\n");
    return NULL;
  }
  lua_State *L = luaL_newstate();
  if (!L) {
    fprintf(stderr, "visreg: cannot create the Lua interpreter (out of memory)\n");
    return NULL;
  }
  luaL_openlibs(L);
  prepend_path(L, dir);
  lua_pushstring(L, dir);
  lua_setglobal(L, "VISREG_LUA_DIR");
  char exe[PATH_MAX];
  ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (len > 0) {
    exe[len] = 0;
    lua_pushstring(L, exe);
    lua_setglobal(L, "VISREG_EXE"); /* so scripts and tests can run the binary itself */
  }
  return L;
}

void vr_host_close(lua_State *L) {
  if (L) lua_close(L);
}

void vr_host_add_script_dir(lua_State *L, const char *path) {
  char dir[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash) *slash = 0;
  else snprintf(dir, sizeof dir, ".");
  prepend_path(L, dir);
}

/* message handler: the error with a traceback (non-string errors through tostring) */
static int traceback(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (!msg) {
    lua_getglobal(L, "tostring");
    lua_pushvalue(L, 1);
    lua_call(L, 1, 1);
    msg = lua_tostring(L, -1);
    if (!msg) msg = "(error object is not a string)";
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

int vr_host_pcall(lua_State *L, int nargs, int nres) {
  int base = lua_gettop(L) - nargs;
  lua_pushcfunction(L, traceback);
  lua_insert(L, base);
  int rc = lua_pcall(L, nargs, nres, base);
  lua_remove(L, base);
  if (rc != 0) {
    const char *msg = lua_tostring(L, -1);
    fflush(stdout);
    fprintf(stderr, "visreg: %s\n", msg ? msg : "(unknown error)");
    lua_pop(L, 1);
    return 1;
  }
  return 0;
}

static int exit_status(lua_State *L, int nres_base) {
  int status = 0;
  if (lua_gettop(L) > nres_base) {
    if (lua_type(L, -1) == LUA_TNUMBER) status = (int)lua_tointeger(L, -1);
    else if (lua_type(L, -1) == LUA_TBOOLEAN) status = lua_toboolean(L, -1) ? 0 : 1;
  }
  lua_settop(L, nres_base);
  return status;
}

int vr_host_run_script(lua_State *L, const char *script, int argc, char **argv) {
  lua_createtable(L, argc, 1);
  lua_pushstring(L, script);
  lua_rawseti(L, -2, 0);
  for (int k = 0; k < argc; k++) {
    lua_pushstring(L, argv[k]);
    lua_rawseti(L, -2, k + 1);
  }
  lua_setglobal(L, "arg");
  int top = lua_gettop(L);
  if (luaL_loadfile(L, script) != 0) {
    fprintf(stderr, "visreg: %s\n", lua_tostring(L, -1));
    lua_pop(L, 1);
    return 1;
  }
  for (int k = 0; k < argc; k++) lua_pushstring(L, argv[k]);
  if (vr_host_pcall(L, argc, 1)) return 1;
  return exit_status(L, top);
}

int vr_host_call_module(lua_State *L, const char *module, const char *func, int argc, char **argv) {
  int top = lua_gettop(L);
  lua_getglobal(L, "require");
  lua_pushstring(L, module);
  if (vr_host_pcall(L, 1, 1)) return 1;
  lua_getfield(L, -1, func);
  lua_remove(L, -2);
  if (!lua_isfunction(L, -1)) {
    fprintf(stderr, "visreg: module %s has no function %s\n", module, func);
    lua_settop(L, top);
    return 1;
  }
  lua_createtable(L, argc, 0);
  for (int k = 0; k < argc; k++) {
    lua_pushstring(L, argv[k]);
    lua_rawseti(L, -2, k + 1);
  }
  if (vr_host_pcall(L, 1, 1)) return 1;
  return exit_status(L, top);
}

/* ---- Ctrl-C: the core's interrupt request (core/interrupt.c) ---- */
static void on_sigint(int sig) {
  (void)sig;
  vr_interrupt_request(); /* SA_RESETHAND: the next Ctrl-C kills */
}

void vr_host_catch_sigint(int on) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sigemptyset(&sa.sa_mask);
  if (on) {
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESETHAND;
  } else {
    sa.sa_handler = SIG_DFL;
  }
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL); /* a scheduler's stop (Slurm's time limit, preemption) also saves */
}

int vr_host_interrupted(void) { return vr_interrupt_pending(); }
void vr_host_clear_interrupt(void) { vr_interrupt_clear(); }
int vr_host_isatty(int fd) { return isatty(fd); }

double vr_host_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
