// http_server: a tiny HTTP/1.1 server on coio streams - keep-alive, GET / and 404, request
// bodies by Content-Length, 431 for oversized headers (limit_overrun_error keeps the data,
// so the server can still answer before closing).
//
// Run:   http_server [--port 8080] [--seconds S]
// Try:   curl -v http://127.0.0.1:8080/      (or: printf 'GET / HTTP/1.1\r\nHost: x\r\n\r\n' | nc -q1 127.0.0.1 8080)
// Serves until Ctrl-C, or for --seconds S when given.
#include <coio/run.hpp>
#include <coio/server.hpp>
#include <coio/sleep.hpp>
#include <coio/task.hpp>

#include <algorithm>
#include <cctype>
#include <iostream>
#include <string>
#include <string_view>

namespace {

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

coio::coro<void> handle(coio::stream_reader reader, coio::stream_writer writer) {
    try {
        for (int served = 0; served < 10000; ++served) {  // keep-alive, bounded per connection
            std::string head;
            try {
                head = co_await reader.readuntil("\r\n\r\n");
            } catch (const coio::incomplete_read_error&) {
                break;  // the client closed between requests
            } catch (const coio::limit_overrun_error&) {
                respond(writer, 431, "Request Header Fields Too Large", "headers too large\n", false);
                break;
            }
            const auto line_end = head.find("\r\n");
            const std::string request_line = head.substr(0, line_end);
            const auto sp1 = request_line.find(' ');
            const auto sp2 = request_line.rfind(' ');
            if (sp1 == std::string::npos || sp2 == sp1) {
                respond(writer, 400, "Bad Request", "bad request line\n", false);
                break;
            }
            const std::string method = request_line.substr(0, sp1);
            const std::string target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
            const std::string version = request_line.substr(sp2 + 1);
            bool keep_alive = version == "HTTP/1.1";
            std::size_t content_length = 0;
            for (std::size_t pos = line_end + 2; pos < head.size();) {
                const auto eol = head.find("\r\n", pos);
                if (eol == std::string::npos || eol == pos) break;
                const std::string_view field(head.data() + pos, eol - pos);
                if (const auto colon = field.find(':'); colon != std::string_view::npos) {
                    const std::string name = lower(field.substr(0, colon));
                    std::string_view value = field.substr(colon + 1);
                    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
                    if (name == "content-length") content_length = std::stoul(std::string(value));
                    if (name == "connection") keep_alive = lower(value) != "close";
                }
                pos = eol + 2;
            }
            if (content_length > (1u << 20)) {
                respond(writer, 413, "Payload Too Large", "body too large\n", false);
                break;
            }
            const std::string body = co_await reader.readexactly(content_length);
            if (method == "GET" && target == "/") {
                respond(writer, 200, "OK", "Hello from coio over io_uring!\n", keep_alive);
            } else if (method == "POST" && target == "/echo") {
                respond(writer, 200, "OK", body, keep_alive);
            } else {
                respond(writer, 404, "Not Found", "no such page: " + target + "\n", keep_alive);
            }
            co_await writer.drain();
            if (!keep_alive) break;
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
        else {
            std::cerr << "usage: http_server [--port P] [--seconds S]\n";
            return 2;
        }
    }
    try {
        coio::run(main_(static_cast<std::uint16_t>(port), seconds));
    } catch (const coio::keyboard_interrupt&) {
        std::cout << "stopped\n";
    } catch (const std::exception& e) {
        std::cerr << "http_server: " << e.what() << '\n';
        return 1;
    }
    return 0;
}
