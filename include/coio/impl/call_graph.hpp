// coio/impl/call_graph.hpp - the bodies of coio/call_graph.hpp, event_loop::dump_tasks and
// debug mode (slow steps, never-awaited coros, tasks pending at close, the dump signal).
// Not API: included by <coio/call_graph.hpp>, and by <coio/loop.hpp> at its end where the
// loop's bodies are compiled (see detail/decl.hpp).
//
// Contracts:
//  * Nothing here runs on the hot path unless debug mode is on: a call graph is built from
//    what tasks and frames record anyway (the hook of the current await, each frame's link
//    and creation site), only when someone asks.
//  * A task's frames are walked only while it is suspended (or not started): its resume
//    point is then a live frame, and every frame's link a live frame or its task. A running
//    task's resume point may be a frame that has finished since, so it is never read.
//  * The dump signal is read through the loop's signalfd (add_signal_handler): the kernel
//    queues the signal, the loop reads it and prints between two steps, so nothing runs in
//    a signal handler and the tree is consistent.
#pragma once

#include <coio/call_graph.hpp>
#include <coio/detail/decl.hpp>
#include <coio/detail/frame_info.hpp>
#include <coio/detail/task_base.hpp>
#include <coio/detail/wait_info.hpp>
#include <coio/loop.hpp>

#include <signal.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <ostream>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace coio {
namespace detail {

inline call_graph::state status_of(const task_base& t) noexcept {
    if (t.done()) return call_graph::state::done;
    if (t.loop() && t.loop()->current_task_state() == &t) return call_graph::state::running;
    if (t.wait_hook()) return call_graph::state::waiting;
    return t.started() ? call_graph::state::ready : call_graph::state::pending;
}

/// The frames `t` is suspended in, innermost first (see the header comment for when).
inline void collect_frames(const task_base& t, [[maybe_unused]] std::vector<call_frame>& out) {
    const auto st = status_of(t);
    if (st == call_graph::state::done || st == call_graph::state::running) return;
    void* const noop = std::noop_coroutine().address();
    void* a = t.resume_point().address();
    // Bounded: a chain is as deep as the program nests awaits; a broken one must not hang a dump.
    for (int n = 0; a && a != noop && n < 100000; ++n) {
        const frame_info* fi = frame_of(a);
        if (!fi) break;
#if COIO_INTROSPECTION
        out.push_back(call_frame{fi->function, coio::source_location(fi->file, fi->line),
                                 fi->magic == frame_info::magic_generator});
#endif
        if (fi->link & frame_info::root_tag) break;  // the task's root
        a = reinterpret_cast<void*>(fi->link);
    }
}

/// What `t`'s current await waits for (empty when it is not waiting).
inline wait_info inspect_wait(const task_base& t) {
    wait_info w;
    if (const cancel_hook* h = t.wait_hook(); h && h->inspect) h->inspect(h, w);
    return w;
}

inline void for_each_pending_task(const event_loop& loop, auto&& f) {
    for (auto* s = loop.live_states().front(); s; s = event_loop::live_list::next(s))
        if (s->is_task() && !s->done()) f(*static_cast<const task_base*>(s));
}

inline call_graph capture_graph_at(const task_base& t, std::vector<const task_base*>& path) {
    call_graph g;
    g.name = t.name();
    g.id = t.id();
    g.created_at = t.where();
    g.status = status_of(t);
    if (const cancel_hook* h = t.wait_hook()) {
        g.waiting_on = h->what;
        g.wait_detail = inspect_wait(t).detail;
    }
    collect_frames(t, g.call_stack);
    if (!t.loop() || t.done()) return g;
    path.push_back(&t);  // a task that awaits itself through others is listed once
    for_each_pending_task(*t.loop(), [&](const task_base& w) {
        if (std::find(path.begin(), path.end(), &w) != path.end()) return;
        const wait_info info = inspect_wait(w);
        if (std::find(info.awaits.begin(), info.awaits.end(), &t) != info.awaits.end())
            g.awaited_by.push_back(capture_graph_at(w, path));
    });
    path.pop_back();
    return g;
}

inline call_graph capture_graph(const task_base& t) {
    std::vector<const task_base*> path;
    return capture_graph_at(t, path);
}

inline call_graph capture_current_graph() { return capture_graph(require_current_task()); }

inline void render_graph(const call_graph& g, std::string& out, int level) {
    const std::string indent(static_cast<std::size_t>(level) * 4, ' ');
    auto line = [&](const std::string& s) {
        if (!out.empty()) out += '\n';
        out += indent;
        out += s;
    };
    line("* Task(name='" + g.name + "', id=" + std::to_string(g.id) + ")");
    line(std::string("  + Created at: ") + g.created_at.file_name() + ":" + std::to_string(g.created_at.line()));
    switch (g.status) {
    case call_graph::state::waiting:
        line("  + Waiting on: " + g.waiting_on + (g.wait_detail.empty() ? "" : " (" + g.wait_detail + ")"));
        break;
    case call_graph::state::pending: line("  + Not started yet"); break;
    case call_graph::state::ready: line("  + Ready to resume"); break;
    case call_graph::state::running: line("  + Running"); break;
    case call_graph::state::done: line("  + Done"); break;
    }
    if (!g.call_stack.empty()) {
        line("  + Call stack:");
        for (const call_frame& f : g.call_stack)
            line(std::string("  |   File '") + f.location.file_name() + "', line " + std::to_string(f.location.line()) +
                 ", in " + (f.async_generator ? "async generator " : "async ") + f.function + "()");
    }
    if (!g.awaited_by.empty()) {
        line("  + Awaited by:");
        for (const call_graph& p : g.awaited_by) render_graph(p, out, level + 1);
    }
}

/// One task of dump_tasks: its line, its frames, then the tasks it waits for, as a tree.
inline void write_task_node(std::ostream& os, const task_base& t, const std::string& head, const std::string& rest,
                            const std::unordered_map<const task_base*, std::vector<const task_base*>>& children,
                            std::vector<const task_base*>& path) {
    os << head << "(T) task '" << t.name() << "' id=" << t.id() << " created at " << t.where().file_name() << ':'
       << t.where().line();
    switch (status_of(t)) {
    case call_graph::state::waiting: {
        const cancel_hook* h = t.wait_hook();
        const std::string detail = inspect_wait(t).detail;
        os << " waiting on " << h->what;
        if (!detail.empty()) os << " (" << detail << ')';
        break;
    }
    case call_graph::state::pending: os << " not started yet"; break;
    case call_graph::state::ready: os << " ready"; break;
    case call_graph::state::running: os << " running"; break;
    case call_graph::state::done: os << " done"; break;
    }
    os << '\n';
    auto it = children.find(&t);
    const bool has_children = it != children.end() && !it->second.empty();
    std::vector<call_frame> frames;
    collect_frames(t, frames);
    for (const call_frame& f : frames)
        os << rest << (has_children ? "\u2502   " : "    ") << (f.async_generator ? "async generator " : "")
           << f.function << "() " << f.location.file_name() << ':' << f.location.line() << '\n';
    if (!has_children) return;
    if (std::find(path.begin(), path.end(), &t) != path.end()) return;  // a cycle of awaits
    path.push_back(&t);
    const auto& kids = it->second;
    for (std::size_t i = 0; i < kids.size(); ++i) {
        const bool last = i + 1 == kids.size();
        write_task_node(os, *kids[i], rest + (last ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 "),
                        rest + (last ? "    " : "\u2502   "), children, path);
    }
    path.pop_back();
}

/// Parses COIO_DUMP_SIGNAL: "USR1", "SIGUSR1" or a number. 0 when unset or unknown.
inline int parse_signal_name(const char* s) {
    if (!s || !*s) return 0;
    if (std::strncmp(s, "SIG", 3) == 0) s += 3;
    static constexpr std::pair<const char*, int> names[] = {
        {"HUP", SIGHUP}, {"INT", SIGINT}, {"QUIT", SIGQUIT}, {"USR1", SIGUSR1}, {"USR2", SIGUSR2},
        {"TERM", SIGTERM}, {"WINCH", SIGWINCH}, {"PWR", SIGPWR}, {"URG", SIGURG},
    };
    for (const auto& [name, sig] : names)
        if (std::strcmp(s, name) == 0) return sig;
    char* end = nullptr;
    const long v = std::strtol(s, &end, 10);
    return end && *end == '\0' && v > 0 && v < NSIG ? static_cast<int>(v) : 0;
}

/// Debug mode's report of a coro destroyed without ever running (asyncio: "coroutine ...
/// was never awaited"), through the running loop's exception handler.
inline void report_never_awaited([[maybe_unused]] const frame_info& fi) noexcept {
#if COIO_INTROSPECTION
    event_loop* loop = running_loop;
    if (!loop || !loop->options().debug) return;
    try {
        exception_context ctx;
        ctx.message = std::string("coroutine '") + fi.function + "' created at " + fi.file + ":" +
                      std::to_string(fi.line) + " was destroyed without ever being awaited";
        loop->call_exception_handler(ctx);
    } catch (...) {
        // Out of memory while reporting: the report is lost, nothing else.
    }
#endif
}

inline std::string where_now(const task_base& t) {
    std::vector<call_frame> frames;
    collect_frames(t, frames);
    std::string s;
    if (const cancel_hook* h = t.wait_hook()) {
        s += "; now waiting on ";
        s += h->what;
    }
    if (!frames.empty())
        s += std::string(" in ") + frames.front().function + "() at " + frames.front().location.file_name() + ":" +
             std::to_string(frames.front().location.line());
    return s;
}

} // namespace detail

inline std::string format_call_graph(const call_graph& g) {
    std::string out;
    detail::render_graph(g, out, 0);
    return out;
}

// The event loop's introspection bodies: compiled once with COIO_SEPARATE_COMPILATION, as the
// loop's own (see detail/decl.hpp).
#if COIO_DEFINE_BODIES
COIO_DECL void event_loop::dump_tasks(std::ostream& os) const {
    // Children of a task: the pending tasks its current await waits for (gather's children,
    // a task_group's tasks, a task it co_awaits, shield, wait_for). A task nobody awaits is
    // a root; a task awaited by several is shown under each.
    std::unordered_map<const detail::task_base*, std::vector<const detail::task_base*>> children;
    std::unordered_map<const detail::task_base*, bool> awaited;
    std::vector<const detail::task_base*> all;
    detail::for_each_pending_task(*this, [&](const detail::task_base& t) {
        all.push_back(&t);
        for (const detail::future_base* f : detail::inspect_wait(t).awaits)
            if (f->is_task() && !f->done()) {
                auto* c = static_cast<const detail::task_base*>(f);
                children[&t].push_back(c);
                awaited[c] = true;
            }
    });
    std::vector<const detail::task_base*> roots;
    for (const detail::task_base* t : all)
        if (!awaited.count(t)) roots.push_back(t);
    // Tasks only reachable through a cycle of awaits (a bug worth seeing): shown as roots.
    for (const detail::task_base* t : all) {
        if (!awaited.count(t)) continue;
        bool reachable = false;
        for (const detail::task_base* r : all)
            if (!awaited.count(r)) {
                // cheap enough for a debugging dump: depth-first search from each root
                std::vector<const detail::task_base*> stack{r}, seen;
                while (!stack.empty() && !reachable) {
                    const detail::task_base* x = stack.back();
                    stack.pop_back();
                    if (x == t) reachable = true;
                    if (std::find(seen.begin(), seen.end(), x) != seen.end()) continue;
                    seen.push_back(x);
                    if (auto it = children.find(x); it != children.end())
                        stack.insert(stack.end(), it->second.begin(), it->second.end());
                }
                if (reachable) break;
            }
        if (!reachable) roots.push_back(t);
    }
    os << "coio: " << all.size() << " pending task" << (all.size() == 1 ? "" : "s") << '\n';
    std::vector<const detail::task_base*> path;
    for (std::size_t i = 0; i < roots.size(); ++i) {
        const bool last = i + 1 == roots.size();
        detail::write_task_node(os, *roots[i], last ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ",
                                last ? "    " : "\u2502   ", children, path);
    }
}

COIO_DECL void event_loop::init_introspection() {
    if (const char* d = std::getenv("COIO_DEBUG"); d && *d && std::strcmp(d, "0") != 0) options_.debug = true;
    if (options_.debug) detail::never_awaited_hook.store(&detail::report_never_awaited, std::memory_order_relaxed);
    int sig = options_.dump_signal;
    if (sig == 0) sig = detail::parse_signal_name(std::getenv("COIO_DUMP_SIGNAL"));
    if (sig != 0) {
        options_.dump_signal = sig;
        add_signal_handler(sig, [this] {
            std::ostringstream os;
            dump_tasks(os);
            const std::string s = os.str();
            std::fwrite(s.data(), 1, s.size(), stderr);
            std::fflush(stderr);
        });
    }
}

COIO_DECL void event_loop::run_timed(detail::work_item* w) noexcept {
    const bool is_task = detail::task_base::is_task_step(w);
    detail::ref_ptr<detail::task_base> t(is_task ? static_cast<detail::task_base*>(w) : nullptr);
    const auto t0 = clock::now();
    w->run(w);  // a callback may be freed by this
    const auto took = clock::now() - t0;
    if (took < options_.slow_callback_duration) return;
    try {
        exception_context ctx;
        if (t) {
            ctx.task_name = t->name();
            ctx.task_created_at = std::string(t->where().file_name()) + ":" + std::to_string(t->where().line());
            ctx.message = "Executing task '" + t->name() + "' took " + detail::format_seconds(took) +
                          (t->done() ? "; it is done now" : detail::where_now(*t));
        } else {
            ctx.message = "Executing a callback took " + detail::format_seconds(took);
        }
        call_exception_handler(ctx);
    } catch (...) {
        // Out of memory while reporting: the report is lost, nothing else.
    }
}

COIO_DECL void event_loop::report_pending_at_close() noexcept {
    try {
        detail::for_each_pending_task(*this, [&](const detail::task_base& t) {
            exception_context ctx;
            ctx.task_name = t.name();
            ctx.task_created_at = std::string(t.where().file_name()) + ":" + std::to_string(t.where().line());
            ctx.message = "Task was still pending when the loop closed (it is cancelled now):\n" +
                          format_call_graph(detail::capture_graph(t));
            call_exception_handler(ctx);
        });
    } catch (...) {
        // Out of memory while reporting: the report is lost, nothing else.
    }
}

#endif

} // namespace coio
