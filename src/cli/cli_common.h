// What every tool does the same way: exit codes for bad flags, and Ctrl-C.
#pragma once

#include <CLI/CLI.hpp>

namespace qrun::cli {

// CLI11 reports a bad flag with its own codes (105, 109...): print its message and
// exit 2, the usual code for a usage error; --help exits 0.
inline int usage_exit(const CLI::App& app, const CLI::ParseError& e) { return app.exit(e) == 0 ? 0 : 2; }

// Ctrl-C asks the running generation to stop instead of killing the process (so the
// timings still print); a second Ctrl-C before the first was taken kills it.
void install_interrupt_handler();
// True once after each Ctrl-C.
bool take_interrupt();

}  // namespace qrun::cli
