/* cli.h — the `sdc` command line: one function per subcommand, each in its own file
 * (cli/cmd_<name>.c), taking argv after the subcommand name and returning the exit
 * status (0 ok, 1 "different"/"no" answers where a command defines them, 2 error, 3 inspect's
 * "dangerous file"). Errors are printed as one line on stderr: "sdc: FILE: what: where". */
#ifndef SDC_CLI_H
#define SDC_CLI_H

int sdc_cmd_inspect(int argc, char **argv);
int sdc_cmd_convert(int argc, char **argv);
int sdc_cmd_tokenize(int argc, char **argv);
int sdc_cmd_generate(int argc, char **argv);
int sdc_cmd_compare(int argc, char **argv);
int sdc_cmd_bench_load(int argc, char **argv);
int sdc_cmd_serve(int argc, char **argv);

#endif
