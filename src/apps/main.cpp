#include "apps/commands.h"

int main(int argc, char** argv) { return longqa::apps::run_cli(argc, argv); }
