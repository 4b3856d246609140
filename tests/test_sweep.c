/* test_sweep.c: sweep files from libyaml's events to a checked sweep, through the embedded host as
 * `visreg sweep` reads them (core/yaml.c, lua/visreg/yaml.lua, lua/visreg/sweep/spec.lua): every
 * block and distribution gives the expected trials, and each bad file is refused with its line
 * and column. tests/lua/test_sweep_spec.lua checks the same layer in more detail from Lua. */
#include "testutil.h"
#include "../core/host.h"
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char result[4096];

/* writes "recipe: <this checkout's default recipe>\n" + body to a file, reads it as a sweep and
 * checks every trial against the recipe; result holds "ok N" (N trials) or the error message */
static const char *read_sweep(const char *body) {
  static int n;
  char path[256], cwd[1024];
  snprintf(path, sizeof path, "/tmp/visreg_test_sweep_%d_%d.yaml", (int)getpid(), n++);
  ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fprintf(f, "recipe: %s/recipes/fmnist_visreg.lua\n%s", cwd, body);
  fclose(f);
  lua_State *L = vr_host_new();
  ck_assert_ptr_nonnull(L);
  const char *code =
      "local spec, path = require 'visreg.sweep.spec', ...\n"
      "local ok, res = pcall(function()\n"
      "  local s = spec.read(path)\n"
      "  local trials = spec.trials(s)\n"
      "  spec.validate(s, trials)\n"
      "  return 'ok ' .. #trials .. ' ' .. trials[#trials].folder\n"
      "end)\n"
      "return tostring(res)\n";
  ck_assert_int_eq(luaL_loadstring(L, code), 0);
  lua_pushstring(L, path);
  ck_assert_int_eq(vr_host_pcall(L, 1, 1), 0);
  snprintf(result, sizeof result, "%s", lua_tostring(L, -1));
  vr_host_close(L);
  unlink(path);
  return result;
}

/* the message names line:column and contains every fragment */
static void refused(const char *body, const char *at, const char *what, const char *what2) {
  const char *msg = read_sweep(body);
  ck_assert_msg(strncmp(msg, "ok", 2) != 0, "accepted: %s", body);
  ck_assert_msg(strstr(msg, at) != NULL, "no %s in: %s", at, msg);
  ck_assert_msg(strstr(msg, what) != NULL, "no '%s' in: %s", what, msg);
  ck_assert_msg(!what2 || strstr(msg, what2) != NULL, "no '%s' in: %s", what2, msg);
}

START_TEST(blocks) {
  ck_assert_str_eq(read_sweep("grid:\n  loss.lambda: [0.4, 0.8]\n  loss.slices: [256, 1024]\n"),
                   "ok 4 0003-loss.lambda=0.8-loss.slices=1024");
  ck_assert_str_eq(read_sweep("zip: { optim.lr: [1.0e-3, 2.0e-3], optim.weight_decay: [0.05, 0.1] }\nseeds: [0, 1, 2]\n"),
                   "ok 6 0005-optim.lr=0.002-optim.weight_decay=0.1-seed=2");
  ck_assert_str_eq(read_sweep("grid: { loss.lambda: [0.5, 0.7] }\nzip: { optim.lr: [0.001, 0.002] }\nseeds: [0, 1]\n"),
                   "ok 8 0007-loss.lambda=0.7-optim.lr=0.002-seed=1");
  /* every distribution; the draws are checked against their ranges in test_sweep_spec.lua */
  const char *msg = read_sweep("random:\n  n: 6\n  seed: 1\n  params:\n"
                               "    optim.lr: { loguniform: [1.0e-4, 1.0e-2] }\n"
                               "    loss.lambda: { uniform: [0.3, 0.9] }\n"
                               "    model.width: { choice: [8, 16] }\n"
                               "    log.every: { randint: [1, 5] }\n");
  ck_assert_msg(strncmp(msg, "ok 6 0005-optim.lr=", 19) == 0, "%s", msg);
  ck_assert_str_eq(read_sweep("set: { epochs: 1 }\n"), "ok 1 0000");
}
END_TEST

START_TEST(bad_files) {
  refused("grid:\n\tloss.lambda: [0.4]\n", ":3:1:", "tab", NULL);
  refused("grid:\n  loss.lambda: [0.4]\n  loss.lambda: [0.6]\n", ":4:3:", "duplicate key 'loss.lambda'", NULL);
  refused("grid:\n  loss.lamda: [0.4]\n", ":3:3:", "unknown key 'loss.lamda'", "loss.lambda");
  refused("grdi:\n  loss.lambda: [0.4]\n", ":2:1:", "unknown key 'grdi'", "grid");
  refused("grid:\n  loss.lambda: [0.4, yes please]\n", ":3:3:", "expected a number", NULL);
  refused("grid:\n  loss.lambda: []\n", ":3:3:", "empty", NULL);
  refused("seeds: []\n", ":2:1:", "empty", NULL);
  refused("random:\n  n: 2\n  params:\n    optim.lr: { lognormal: [1, 2] }\n", ":5:17:", "unknown distribution", "loguniform");
  refused("random:\n  n: 2\n  params:\n    optim.lr: { uniform: [1] }\n", ":5:17:", "[low, high]", NULL);
  refused("parallel: 1.5\n", ":2:1:", "parallel", "integer");
  refused("grid: { loss.lambda: [0.4, 0.6\n", ":3:1:", "while parsing a flow sequence at line 2", NULL);
}
END_TEST

START_TEST(trial_limit) {
  char body[1024] = "grid:\n";
  const char *keys[] = {"loss.lambda", "loss.slices", "optim.lr", "optim.weight_decay", "seed", "epochs"};
  for (int k = 0; k < 6; k++) {
    strcat(body, "  ");
    strcat(body, keys[k]);
    strcat(body, ": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n");
  }
  refused(body, ":1:1:", "1000000 trials, more than the limit of 10000", "--max-trials");
}
END_TEST

static Suite *sweep_suite(void) {
  Suite *s = suite_create("sweep");
  TCase *tc = tcase_create("files");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, blocks);
  tcase_add_test(tc, bad_files);
  tcase_add_test(tc, trial_limit);
  suite_add_tcase(s, tc);
  return s;
}
VR_TEST_MAIN(sweep_suite)
