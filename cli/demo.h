/* demo.h — where the demo model is (the model `sdc generate` uses when no -m is given). */
#ifndef SDC_CLI_DEMO_H
#define SDC_CLI_DEMO_H

/* The demo model's .safetensors: beside the binary in an installed (or copied) tree
 * (<dir of /proc/self/exe>/SDC_DEMO_REL, ../share/sdc/toy-sd1 by default), else in the source
 * tree the binary was built from (SDC_SOURCE_DIR/assets/toy-sd1), else assets/toy-sd1 under the
 * current directory. A static buffer; NULL when none is readable. */
const char *cli_demo_model(void);

/* The file's path inside any of those folders, for messages. */
#define CLI_DEMO_NAME "toy-sd1/toy-sd1.safetensors"

#endif
