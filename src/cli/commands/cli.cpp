#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <vector>

#include "cli/commands/commands.h"
#include "util/errors.h"

namespace vmatrace {

int run_cli(int argc, char** argv) {
  CLI::App app{"vmatrace: watch a process's address space change, live or from a recording"};
  app.require_subcommand(1);
  app.set_version_flag("--version", version_text, "print the version, git commit, libbpf version and BPF object hash");

  // In the order `vmatrace --help` lists them.
  const std::vector<Command> commands = {add_trace_command(app),  add_record_command(app), add_replay_command(app),
                                         add_report_command(app), add_info_command(app),   add_features_command(app),
                                         add_top_command(app)};

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);
    std::fprintf(stderr, "vmatrace: %s (see vmatrace --help)\n", e.what());
    return 2;
  }

  try {
    for (const auto& c : commands)
      if (*c.app) return c.run();
  } catch (const UserError& e) {
    std::fprintf(stderr, "vmatrace: %s\n", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmatrace: %s\n", e.what());
    return 1;
  }
  return 0;
}

}  // namespace vmatrace
