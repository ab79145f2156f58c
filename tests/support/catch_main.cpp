// tests/support/catch_main.cpp - the one main() shared by every coio test executable.
//
// Compiled once (the coio_catch_main object library) instead of once per test file, because
// Catch2 2.x compiles its whole implementation into the translation unit that defines main.
// Catch::Session is used for both Catch2 2.x and 3.x so the two versions share one code path.

// Catch2 2.x: emit the implementation here, but let us write main() ourselves.
#define CATCH_CONFIG_RUNNER
#include "support/catch.hpp"

int main(int argc, char* argv[]) {
    return Catch::Session().run(argc, argv);
}
