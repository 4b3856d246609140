/* commands.h: the subcommands of bin/visreg, each defined in its own file under tools/.
 * argv[0] is the command name. */
#ifndef VISREG_COMMANDS_H
#define VISREG_COMMANDS_H
#define VR_COMMAND(name) int name(int argc, char **argv)
VR_COMMAND(vr_cmd_train);
VR_COMMAND(vr_cmd_run);
VR_COMMAND(vr_cmd_eval);
VR_COMMAND(vr_cmd_loss);
VR_COMMAND(vr_cmd_bench);
VR_COMMAND(vr_cmd_repl);
VR_COMMAND(vr_cmd_sweep);
VR_COMMAND(vr_cmd_probe);
VR_COMMAND(vr_cmd_data);
VR_COMMAND(vr_cmd_report);
/* benchmarks under `visreg bench NAME` */
VR_COMMAND(vr_bench_ops);
VR_COMMAND(vr_bench_losses);
VR_COMMAND(vr_bench_train);
VR_COMMAND(vr_bench_data);
VR_COMMAND(vr_bench_conv);
#endif
