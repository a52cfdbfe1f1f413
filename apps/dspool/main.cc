// The one dspool binary; src/cli/cli.h has the commands.
#include "cli/cli.h"

int main(int argc, char** argv) { return dspool::RunCli(argc, argv); }
