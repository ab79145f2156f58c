// http_server: a tiny HTTP/1.1 server on coio streams - keep-alive, GET / and 404, request
// bodies by Content-Length, 431 for oversized headers (limit_overrun_error keeps the data,
// so the server can still answer before closing).
//
// Defences a server on the open internet needs, even a small one:
//  * a request deadline (--timeout S, default 10 s): the head and body of each request must
//    arrive within it, and an idle keep-alive connection is closed after it, so slow or silent
//    clients ("slowloris") cannot hold connections forever. The server answers 408 and closes.
//  * `Transfer-Encoding` (chunked bodies) is not implemented: 501 and close, instead of
//    mistaking the body for the next request.
//
// Run:   http_server [--port 8080] [--seconds S] [--timeout S]
// Try:   curl -v http://127.0.0.1:8080/      (or: printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | nc -q1 127.0.0.1 8080)
// Serves until Ctrl-C (exit status 130), or for --seconds S when given.
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>
#include <coio/timeout.hpp>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>

namespace {

std::chrono::duration<double> request_timeout{10.0};

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

void respond(coio::stream_writer& w, int status, std::string_view reason, std::string_view body, bool keep_alive) {
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) + "\r\n";
    head += "Content-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
    head += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
    w.write(head);
    w.write(body);
}

/// A parsed request head, or the error response to send before closing.
struct request {
    std::string method, target;
    bool keep_alive = true;
    std::size_t content_length = 0;
    int error_status = 0;  // 0: fine; else respond with it and close
    std::string error_reason;
};

request parse_head(const std::string& head) {
    request r;
    const auto line_end = head.find("\r\n");
    const std::string request_line = head.substr(0, line_end);
    const auto sp1 = request_line.find(' ');
    const auto sp2 = request_line.rfind(' ');
    if (sp1 == std::string::npos || sp2 == sp1) {
        r.error_status = 400;
        r.error_reason = "Bad Request";
        return r;
    }
    r.method = request_line.substr(0, sp1);
    r.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    r.keep_alive = request_line.substr(sp2 + 1) == "HTTP/1.1";
    for (std::size_t pos = line_end + 2; pos < head.size();) {
        const auto eol = head.find("\r\n", pos);
        if (eol == std::string::npos || eol == pos) break;
        const std::string_view field(head.data() + pos, eol - pos);
        if (const auto colon = field.find(':'); colon != std::string_view::npos) {
            const std::string name = lower(field.substr(0, colon));
            std::string_view value = field.substr(colon + 1);
            while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
            if (name == "content-length") r.content_length = std::stoul(std::string(value));
            if (name == "connection") r.keep_alive = lower(value) != "close";
            if (name == "transfer-encoding") {
                // Chunked bodies are not parsed here; reading on would take the body for the
                // next request (request smuggling). RFC 9112: 501, then close.
                r.error_status = 501;
                r.error_reason = "Not Implemented";
            }
        }
        pos = eol + 2;
    }
    if (r.error_status == 0 && r.content_length > (1u << 20)) {
        r.error_status = 413;
        r.error_reason = "Payload Too Large";
    }
    return r;
}

coio::coro<void> handle(coio::stream_reader reader, coio::stream_writer writer) {
    try {
        for (int served = 0; served < 10000; ++served) {  // keep-alive, bounded per connection
            std::optional<request> req;
            std::string body;
            bool closed_by_client = false;
            try {
                // The whole request (or the wait for the next one on a kept-alive connection)
                // must arrive within request_timeout: a slow or silent client is cut off.
                auto deadline = coio::timeout(request_timeout);
                std::string head;
                try {
                    head = co_await reader.readuntil("\r\n\r\n");
                } catch (const coio::incomplete_read_error&) {
                    closed_by_client = true;  // the client closed between requests
                }
                if (!closed_by_client) {
                    req = parse_head(head);
                    if (req->error_status == 0) body = co_await reader.readexactly(req->content_length);
                }
            } catch (const coio::limit_overrun_error&) {
                respond(writer, 431, "Request Header Fields Too Large", "headers too large\n", false);
                break;
            } catch (const coio::timeout_error&) {
                respond(writer, 408, "Request Timeout", "request timeout\n", false);
                break;
            }
            if (closed_by_client) break;
            if (req->error_status != 0) {
                respond(writer, req->error_status, req->error_reason, lower(req->error_reason) + "\n", false);
                break;
            }
            if (req->method == "GET" && req->target == "/") {
                respond(writer, 200, "OK", "Hello from coio over io_uring!\n", req->keep_alive);
            } else if (req->method == "POST" && req->target == "/echo") {
                respond(writer, 200, "OK", body, req->keep_alive);
            } else {
                respond(writer, 404, "Not Found", "no such page: " + req->target + "\n", req->keep_alive);
            }
            co_await writer.drain();
            if (!req->keep_alive) break;
        }
    } catch (const std::exception& e) {
        std::cerr << "http: " << e.what() << '\n';  // bad Content-Length, reset, short body...
    }
    writer.close();
    co_await writer.wait_closed();
}

coio::coro<void> main_(std::uint16_t port, double seconds) {
    auto srv = co_await coio::start_server(handle, "127.0.0.1", port, {.limit = 16 * 1024});
    std::cout << "http://" << srv.sockets().front().local_address() << "/" << std::endl;
    if (seconds > 0) {
        co_await coio::sleep(seconds);
        srv.close();
        co_await srv.wait_closed();
    } else {
        co_await srv.serve_forever();  // Ctrl-C cancels it: the server closes cleanly
    }
}

}  // namespace

int main(int argc, char** argv) {
    unsigned port = 8080;
    double seconds = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const std::string a = argv[i];
        if (a == "--port") port = static_cast<unsigned>(std::stoul(argv[i + 1]));
        else if (a == "--seconds") seconds = std::stod(argv[i + 1]);
        else if (a == "--timeout") request_timeout = std::chrono::duration<double>(std::stod(argv[i + 1]));
        else {
            std::cerr << "usage: http_server [--port P] [--seconds S] [--timeout S]\n";
            return 2;
        }
    }
    if (argc % 2 == 0 || port > 65535 || !(request_timeout.count() > 0)) {
        std::cerr << "usage: http_server [--port P] [--seconds S] [--timeout S]\n";
        return 2;
    }
    // Ctrl-C: the server closes cleanly and the exit status is 130; errors print and exit 1.
    return coio::run_main(main_(static_cast<std::uint16_t>(port), seconds));
}
