#include "cli/commands/commands.h"

int main(int argc, char** argv) { return vmatrace::run_cli(argc, argv); }
