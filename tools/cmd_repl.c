/* cmd_repl.c: `visreg repl [RUN_DIR]`: interactive Lua with the toolkit loaded (as `vr`), readline
 * line editing and history. An expression's values are printed; an incomplete statement asks for
 * more lines. With a run folder, visreg.cli.repl_setup loads its recipe and checkpoint and sets
 * the globals r, enc, proj, data (the trainer) for probing the trained embeddings. */
#include "../core/host.h"
#include "commands.h"
#include <lauxlib.h>
#include <lua.h>
#include <readline/history.h>
#include <readline/readline.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 1 when the chunk failed only because the input ended early */
static int incomplete(lua_State *L, int status) {
  if (status != LUA_ERRSYNTAX) return 0;
  size_t len;
  const char *msg = lua_tolstring(L, -1, &len);
  const char *eof = "'<eof>'";
  size_t el = strlen(eof);
  return len >= el && strcmp(msg + len - el, eof) == 0;
}

/* compiles buf as "return buf" (an expression) or else as a statement */
static int compile(lua_State *L, const char *buf) {
  lua_pushfstring(L, "return %s", buf);
  int st = luaL_loadbuffer(L, lua_tostring(L, -1), lua_objlen(L, -1), "=stdin");
  lua_remove(L, -2);
  if (st == 0) return 0;
  lua_pop(L, 1);
  return luaL_loadbuffer(L, buf, strlen(buf), "=stdin");
}

static void print_results(lua_State *L, int base) {
  int n = lua_gettop(L) - base;
  if (n <= 0) return;
  lua_getglobal(L, "print");
  lua_insert(L, base + 1);
  if (vr_host_pcall(L, n, 0)) return;
}

int vr_cmd_repl(int argc, char **argv) {
  lua_State *L = vr_host_new();
  if (!L) return 1;
  lua_getglobal(L, "require");
  lua_pushstring(L, "visreg");
  if (vr_host_pcall(L, 1, 1)) {
    vr_host_close(L);
    return 1;
  }
  lua_setglobal(L, "vr");
  if (argc > 1 && vr_host_call_module(L, "visreg.cli", "repl_setup", argc - 1, argv + 1) != 0) {
    vr_host_close(L);
    return 1;
  }
  printf("visreg repl: Lua with the toolkit as `vr`; Ctrl-D to leave\n");
  char *line;
  while ((line = readline("> ")) != NULL) {
    if (!*line) {
      free(line);
      continue;
    }
    size_t cap = strlen(line) + 1;
    char *buf = malloc(cap);
    if (!buf) break;
    memcpy(buf, line, cap);
    free(line);
    int base = lua_gettop(L);
    int st;
    while ((st = compile(L, buf)) != 0 && incomplete(L, st)) {
      lua_pop(L, 1);
      char *more = readline(">> ");
      if (!more) break;
      size_t need = strlen(buf) + strlen(more) + 2;
      char *nb = realloc(buf, need);
      if (!nb) {
        free(more);
        break;
      }
      buf = nb;
      strcat(buf, "\n");
      strcat(buf, more);
      free(more);
    }
    add_history(buf);
    free(buf);
    if (st != 0) {
      fprintf(stderr, "%s\n", lua_tostring(L, -1));
      lua_settop(L, base);
      continue;
    }
    if (vr_host_pcall(L, 0, LUA_MULTRET) == 0) print_results(L, base);
    lua_settop(L, base);
  }
  printf("\n");
  vr_host_close(L);
  return 0;
}
