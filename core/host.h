/* host.h: the embedded LuaJIT interpreter (core/host.c), used by the commands in tools/.
 * Only the host speaks the classic Lua C API; the Lua library binds core/visreg.h through FFI.
 * The few host functions that Lua calls through ffi.C are re-declared in lua/visreg/host.lua. */
#ifndef VISREG_HOST_H
#define VISREG_HOST_H

typedef struct lua_State lua_State;

/* A new interpreter with the standard libraries and package.path reaching the toolkit's lua/
 * folder ($VISREG_LUA_PATH, else ../lua next to the executable). NULL (message on stderr) when
 * the folder cannot be found or memory runs out. */
lua_State *vr_host_new(void);
void vr_host_close(lua_State *L);
/* Prepends DIR/?.lua;DIR/?/init.lua to package.path (DIR = the folder holding path). */
void vr_host_add_script_dir(lua_State *L, const char *path);
/* Calls the function below nargs arguments on the stack, with a traceback handler. On error
 * prints "visreg: file:line: message" and the traceback to stderr and returns 1; else 0 and
 * leaves nres results. */
int vr_host_pcall(lua_State *L, int nargs, int nres);
/* Sets the global `arg` like the lua interpreter: arg[0] = script, arg[1..n] = args, and runs
 * the script with the args as varargs. Returns the process exit status (0 ok, 1 error). */
int vr_host_run_script(lua_State *L, const char *script, int argc, char **argv);
/* Calls require(module)[func](argv[0..argc)) as strings; returns the exit status: the function's
 * integer result, 0 for none, 1 on error. */
int vr_host_call_module(lua_State *L, const char *module, const char *func, int argc, char **argv);

/* Ctrl-C: while caught, SIGINT (and SIGTERM) requests an interrupt (vr_interrupt_request: read by
 * the trainer between steps, and by the core's long loops) instead of killing the process; a second
 * one kills as usual. vr_host_interrupted and vr_host_clear_interrupt are vr_interrupt_pending and
 * vr_interrupt_clear. */
void vr_host_catch_sigint(int on);
int vr_host_interrupted(void);
void vr_host_clear_interrupt(void);
/* 1 when stdout is a terminal (progress bars) */
int vr_host_isatty(int fd);
/* monotonic seconds */
double vr_host_now(void);

#endif
