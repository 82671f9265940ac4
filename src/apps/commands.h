// The `longqa` command line: subcommands that parse, call the engine and print. Errors from anywhere
// below end here as one line on stderr and exit status 1.
#pragma once

namespace longqa::apps {

int run_cli(int argc, char** argv);

}  // namespace longqa::apps
