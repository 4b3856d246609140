/* visreg.c: the command-line entry. Each command lives in its own file (tools/cmd_*.c,
 * tools/bench_*.c). */
#include "../core/visreg.h"
#include "commands.h"
#include <stdio.h>
#include <string.h>

/* The CPU settings (vr_cpu_defaults) are environment variables that libgomp and OpenBLAS read in
 * their own constructors: this one runs first (priority 101; theirs have the default). */
__attribute__((constructor(101))) static void host_cpu_defaults(void) { vr_cpu_defaults(); }

typedef struct {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *help;
} command;

static const command commands[] = {
    {"train", vr_cmd_train, "RECIPE.lua [--set key=value ...] [--out DIR] [--resume DIR] [--force]   train a recipe"},
    {"run", vr_cmd_run, "SCRIPT.lua [args]             any Lua script with the toolkit loaded"},
    {"eval", vr_cmd_eval, "RUN_DIR | CHECKPOINT --recipe FILE   linear probe and kNN of a trained encoder"},
    {"loss", vr_cmd_loss, "METHOD --z Z.npy [--slices G.npy] [--grad-out G.npy] ...   a regularizer on arrays"},
    {"bench", vr_cmd_bench, "ops | losses | train | data ...   benchmarks"},
    {"repl", vr_cmd_repl, "[RUN_DIR] [-e CODE] [-i SCRIPT]   interactive Lua and the probing words"},
    {"probe", vr_cmd_probe, "RUN_DIR [--json]              the metric table of a run's test embeddings"},
    {"data", vr_cmd_data, "pack SRC [--size 64] | info CACHE   image folders, packed once"},
    {"sweep", vr_cmd_sweep, "FILE.yaml | status DIR        hyperparameter sweeps (resumable, Slurm)"},
    {"report", vr_cmd_report, "DIR                           a run's or a sweep's page (DIR/report.html)"},
};

static void usage(FILE *f) {
  fprintf(f, "visreg %s: self-supervised learning with VISReg\n\nusage: visreg COMMAND [args]\n\ncommands:\n", vr_version());
  for (size_t k = 0; k < sizeof commands / sizeof *commands; k++)
    fprintf(f, "  %-6s %s\n", commands[k].name, commands[k].help);
  fprintf(f, "\noptions:\n  --version   version, CUDA backend and GPU\n  --help      this text\n");
}

static int version(void) {
  printf("visreg %s\n", vr_version());
  if (!vr_cuda_compiled()) printf("cuda: not compiled in (built with CUDA=0)\n");
  else if (vr_cuda_available()) printf("cuda: compiled in, device: %s\n", vr_cuda_device_name());
  else printf("cuda: compiled in, no GPU found\n");
  printf("cpu threads: %d\n", vr_num_threads());
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
    usage(stdout);
    return argc < 2 ? 1 : 0;
  }
  if (!strcmp(argv[1], "--version")) return version();
  for (size_t k = 0; k < sizeof commands / sizeof *commands; k++) {
    if (strcmp(argv[1], commands[k].name)) continue;
    int rc = commands[k].fn(argc - 1, argv + 1);
    if (vr_profile_enabled()) vr_profile_report(); /* VISREG_PROFILE=1: the op table of the whole command */
    return rc;
  }
  fprintf(stderr, "visreg: unknown command '%s'\n\n", argv[1]);
  usage(stderr);
  return 2;
}
