// tests/consumer/main.cpp - the smallest complete coio program, built by tests/consumer/run.sh
// against coio consumed through add_subdirectory, FetchContent and find_package.
//
// It must compile with nothing but `target_link_libraries(consumer PRIVATE coio::coio)`:
// the umbrella header, C++20, liburing and c-ares all come from the target. Running it
// proves the event loop starts and shuts down cleanly and `run` returns main's result.
#include <coio/coio.hpp>

namespace {

coio::coro<int> main_coro() {
    co_return 0;
}

} // namespace

int main() {
    return coio::run(main_coro());
}
