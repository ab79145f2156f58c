// examples/signals.cpp - waits for SIGINT or SIGTERM with coio::wait_signal and says which
// one came (asyncio: loop.add_signal_handler with a future).
//
//     $ ./signals &
//     waiting for SIGINT or SIGTERM (pid 4242)
//     $ kill -TERM 4242
//     got SIGTERM
//
// Exit status 0 either way: the signal is handled on the loop, so it neither kills the
// process nor cancels main (wait_signal blocks the signals and reads them from a signalfd).
#include <coio/run.hpp>
#include <coio/signal.hpp>

#include <unistd.h>

#include <csignal>
#include <cstdio>

coio::coro<int> amain() {
    // Registered here, before the announcement: a signal sent as soon as the line is seen
    // is already the loop's.
    auto signals = coio::wait_signal({SIGINT, SIGTERM});
    std::printf("waiting for SIGINT or SIGTERM (pid %d)\n", static_cast<int>(::getpid()));
    std::fflush(stdout);
    const int sig = co_await signals;
    std::printf("got %s\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    std::fflush(stdout);
    co_return 0;
}

int main() { return coio::run_main(amain()); }
