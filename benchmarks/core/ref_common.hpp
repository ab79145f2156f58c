// Shared helpers for the core-runtime benchmarks (benchmarks/core/): clocks, memory probes,
// the fixed timer workload and the machine-readable result lines that run.sh parses.
//
// Every program in this folder prints one line per result, `key=value` pairs separated by
// spaces and starting with `name=`, followed by a human line starting with `# `:
//
//   name=bare_coroutine n=1000000 rounds=5 ns_per_task=41.2 ns_per_task_min=38.0 bytes_per_task=56.2 ...
//   # bare coroutine frames (...): 1000000 tasks, 41.2 ns per task (median of 5 rounds, ...)
//
// Spawn results carry `ns_per_task` and `bytes_per_task`; timer results carry
// `last_after_longest_ms`, `p50_ms`, `p99_ms`, `max_ms`, `precision_p99_ms`, `arm_ms`, `early`
// and `missed`. coio's own bench_timers can include this header (timer_delays_ns,
// print_timer_result) to run the same workload and print the same keys.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>
#include <string_view>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace coio_bench {

/// Nanoseconds on the monotonic clock (CLOCK_MONOTONIC, the clock io_uring timeouts, Asio's
/// steady_timer and Python's time.monotonic() use), so deadlines compare across programs.
inline std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

/// Current resident set size in bytes, from /proc/self/statm (second field, in pages).
/// Returns 0 if /proc is unavailable.
inline std::int64_t current_rss_bytes() noexcept {
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) return 0;
    long size_pages = 0;
    long resident_pages = 0;
    const int got = std::fscanf(f, "%ld %ld", &size_pages, &resident_pages);
    std::fclose(f);
    if (got != 2) return 0;
    return static_cast<std::int64_t>(resident_pages) * sysconf(_SC_PAGESIZE);
}

/// Peak resident set size of this process so far in bytes (getrusage ru_maxrss, kB on Linux).
inline std::int64_t peak_rss_bytes() noexcept {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    return static_cast<std::int64_t>(usage.ru_maxrss) * 1024;
}

/// Peak memory per task: (peak RSS now - RSS at the baseline) / n. The baseline is the
/// *current* RSS read just before the tasks were created, the peak is ru_maxrss read after
/// they finished, so the figure is the high-water mark the workload added. Measure the
/// process's biggest workload first: ru_maxrss never goes down, so an earlier, higher peak
/// would hide this one.
inline double bytes_per_task(std::int64_t baseline_rss, std::size_t n) noexcept {
    const std::int64_t grown = std::max<std::int64_t>(0, peak_rss_bytes() - baseline_rss);
    return static_cast<double>(grown) / static_cast<double>(n);
}

/// Gives the memory freed by the previous round back to the kernel (glibc malloc_trim), so
/// every round of a spawn measurement starts from the heap state the first one had. Without
/// it, rounds are not comparable: the free lists Asio's mixed-size frames leave behind make its
/// next rounds 2-5x slower each (measured), while bare frames get faster on recycled memory.
/// Call it outside the timed region. A no-op on other C libraries.
inline void release_free_memory() noexcept {
#if defined(__GLIBC__)
    malloc_trim(0);
#endif
}

/// Parses argv[index] as a positive count, or returns fallback when it is absent.
/// A Google Benchmark flag (`--benchmark_...`) there also counts as absent: scripts/test.sh
/// smoke-runs every bench_* executable with `--benchmark_min_time=...`, standalone ones too.
/// Exits with a message when it is present but not a positive integer.
inline std::size_t count_arg(int argc, char** argv, int index, std::size_t fallback) {
    if (argc <= index || std::string_view(argv[index]).starts_with("--benchmark_")) return fallback;
    char* end = nullptr;
    const unsigned long long value = std::strtoull(argv[index], &end, 10);
    if (end == argv[index] || *end != '\0' || value == 0) {
        std::fprintf(stderr, "%s: argument %d must be a positive integer, got '%s'\n", argv[0], index,
                     argv[index]);
        std::exit(2);
    }
    return static_cast<std::size_t>(value);
}

/// Number of timers in the timer workload (the 100,000 concurrent sleeps).
inline constexpr std::size_t default_timer_count = 100'000;
/// Longest sleep in the workload: delays are uniform in [0, max_delay_ns].
inline constexpr std::int64_t max_delay_ns = 100'000'000;

/// The timer workload: n delays uniform in [0, 100 ms] in nanoseconds, from splitmix64 with
/// a fixed seed. ref_asyncio.py implements the same generator, so every program (C++ or
/// Python) sleeps exactly the same durations in the same order.
inline std::vector<std::int64_t> timer_delays_ns(std::size_t n) {
    std::uint64_t state = 0x5eedc0105eedc010ULL;
    std::vector<std::int64_t> delays;
    delays.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        state += 0x9e3779b97f4a7c15ULL;
        std::uint64_t z = state;
        z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
        z ^= z >> 31U;
        delays.push_back(static_cast<std::int64_t>(z % static_cast<std::uint64_t>(max_delay_ns + 1)));
    }
    return delays;
}

/// Nearest-rank percentile (p in [0, 1]) of an ascending, non-empty sequence.
inline std::int64_t percentile(std::span<const std::int64_t> sorted, double p) noexcept {
    const auto n = static_cast<double>(sorted.size());
    auto rank = static_cast<std::size_t>(std::ceil(p * n));
    rank = std::clamp<std::size_t>(rank, 1, sorted.size());
    return sorted[rank - 1];
}

/// Median of a non-empty sample (copied, then partially sorted).
inline double median(std::vector<double> sample) {
    const auto mid = sample.begin() + static_cast<std::ptrdiff_t>(sample.size() / 2);
    std::nth_element(sample.begin(), mid, sample.end());
    return *mid;
}

/// Prints the result lines of a spawn+gather measurement.
/// ns_rounds: ns per task of each round (the median is reported as ns_per_task, the minimum as
/// ns_per_task_min, all of them as ns_rounds, since this machine is shared and noisy);
/// bytes: peak bytes per task from the first round (negative: not measured, key omitted); extra: more
/// `key=value` pairs (may be empty); what: the human description.
inline void print_spawn_result(std::string_view name, std::size_t n, const std::vector<double>& ns_rounds,
                               double bytes, std::string_view extra, std::string_view what) {
    const double med = median(ns_rounds);
    const double best = *std::min_element(ns_rounds.begin(), ns_rounds.end());
    std::printf("name=%.*s n=%zu rounds=%zu ns_per_task=%.1f ns_per_task_min=%.1f",
                static_cast<int>(name.size()), name.data(), n, ns_rounds.size(), med, best);
    if (bytes >= 0) std::printf(" bytes_per_task=%.1f", bytes);
    std::printf(" ns_rounds=");
    for (std::size_t i = 0; i < ns_rounds.size(); ++i) std::printf("%s%.1f", i == 0 ? "" : ",", ns_rounds[i]);
    std::printf("%s%.*s\n", extra.empty() ? "" : " ", static_cast<int>(extra.size()), extra.data());
    std::printf("# %.*s: %zu tasks, %.1f ns per task (median of %zu rounds, best %.1f)",
                static_cast<int>(what.size()), what.data(), n, med, ns_rounds.size(), best);
    if (bytes >= 0) std::printf(", %.1f bytes per task at peak", bytes);
    std::printf("\n");
    std::fflush(stdout);
}

/// Error counts of a timer run; see print_timer_result.
struct timer_summary {
    std::size_t missed = 0;  ///< sleeps that never woke (must be 0)
    std::size_t early = 0;   ///< sleeps that woke before their own deadline (must be 0)
};

/// Prints the result lines of a timer run and returns its error counts.
///
/// Sleep i was requested (the sleep call made) at requested[i] >= t0 for delays[i] ns, and its
/// continuation ran at fires[i] (0 = never). Two lateness figures come out:
/// - against t0 + delays[i] (`p50_ms`, `p99_ms`, `max_ms`, `last_after_longest_ms`): what a user
///   who starts 100,000 sleeps at t0 sees, so the time the runtime needs to get every sleep
///   armed counts against it (`arm_ms` = last request - t0);
/// - against requested[i] + delays[i] (`precision_*_ms`): the timer mechanism alone. A wake-up
///   before this own deadline is counted as `early`; `early_max_ms` is how early the earliest
///   one was (0 when none was).
/// `last_after_longest_ms` is the last wake-up minus the longest deadline t0 + max(delays).
inline timer_summary print_timer_result(std::string_view name, std::int64_t t0,
                                        std::span<const std::int64_t> delays,
                                        std::span<const std::int64_t> requested,
                                        std::span<const std::int64_t> fires, std::string_view extra,
                                        std::string_view what) {
    timer_summary summary;
    std::vector<std::int64_t> lateness;
    std::vector<std::int64_t> precision;
    lateness.reserve(delays.size());
    precision.reserve(delays.size());
    std::int64_t longest = 0;
    std::int64_t last_fire = t0;
    std::int64_t armed = t0;
    for (std::size_t i = 0; i < delays.size(); ++i) {
        longest = std::max(longest, delays[i]);
        armed = std::max(armed, requested[i]);
        if (fires[i] == 0) {
            ++summary.missed;
            continue;
        }
        lateness.push_back(fires[i] - (t0 + delays[i]));
        precision.push_back(fires[i] - (requested[i] + delays[i]));
        if (precision.back() < 0) ++summary.early;
        last_fire = std::max(last_fire, fires[i]);
    }
    if (lateness.empty()) {
        lateness.push_back(0);
        precision.push_back(0);
    }
    std::sort(lateness.begin(), lateness.end());
    std::sort(precision.begin(), precision.end());
    const auto ms = [](std::int64_t ns) { return static_cast<double>(ns) / 1e6; };
    const double last_after = ms(last_fire - (t0 + longest));
    const double p50 = ms(percentile(lateness, 0.50));
    const double p99 = ms(percentile(lateness, 0.99));
    const double worst = ms(lateness.back());
    const double prec50 = ms(percentile(precision, 0.50));
    const double prec99 = ms(percentile(precision, 0.99));
    const double prec_worst = ms(precision.back());
    const double early_by = ms(std::max<std::int64_t>(0, -precision.front()));  // earliest wake-up
    std::printf(
        "name=%.*s timers=%zu longest_ms=%.3f arm_ms=%.3f last_after_longest_ms=%.3f "
        "p50_ms=%.3f p99_ms=%.3f max_ms=%.3f precision_p50_ms=%.3f precision_p99_ms=%.3f "
        "precision_max_ms=%.3f early=%zu early_max_ms=%.3f missed=%zu%s%.*s\n",
        static_cast<int>(name.size()), name.data(), delays.size(), ms(longest), ms(armed - t0), last_after,
        p50, p99, worst, prec50, prec99, prec_worst, summary.early, early_by, summary.missed,
        extra.empty() ? "" : " ",
        static_cast<int>(extra.size()), extra.data());
    std::printf(
        "# %.*s: %zu sleeps of 0-%.0f ms: last woke %.3f ms after the longest deadline; "
        "lateness p50 %.3f, p99 %.3f, max %.3f ms (arming all took %.3f ms); against each "
        "sleep's own start: p50 %.3f, p99 %.3f, max %.3f ms; %zu early (by up to %.3f ms), %zu missed\n",
        static_cast<int>(what.size()), what.data(), delays.size(), ms(longest), last_after, p50, p99, worst,
        ms(armed - t0), prec50, prec99, prec_worst, summary.early, early_by, summary.missed);
    std::fflush(stdout);
    return summary;
}

}  // namespace coio_bench
