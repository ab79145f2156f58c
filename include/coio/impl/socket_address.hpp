// coio/impl/socket_address.hpp - socket addresses for system calls and error messages
// (Unix paths, printable forms) and the errno exception every socket operation throws.
// Not API: used by socket.hpp, streams, servers and datagrams.
#pragma once

#include <coio/endpoint.hpp>

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <system_error>

namespace coio::detail {

/// Throws std::system_error for errno `err` with "coio: <what>" as the message prefix.
[[noreturn]] inline void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::system_category(), "coio: " + what);
}

/// Fills `sa` with a Unix-domain address. A path starting with '\0' is an abstract name
/// (Linux), as in Python. Returns the address length.
/// Throws: std::system_error(ENAMETOOLONG) when the path does not fit.
inline socklen_t make_unix_address(std::string_view path, sockaddr_un& sa) {
    std::memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    const bool abstract = !path.empty() && path.front() == '\0';
    if (path.empty() || path.size() + (abstract ? 0 : 1) > sizeof sa.sun_path)
        throw std::system_error(ENAMETOOLONG, std::system_category(),
                                "coio: Unix socket path must be 1 to " + std::to_string(sizeof sa.sun_path - 1) +
                                    " bytes");
    std::memcpy(sa.sun_path, path.data(), path.size());
    return static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + path.size() + (abstract ? 0 : 1));
}

/// The path of a Unix-domain address of length `len` (abstract names keep their leading '\0').
inline std::string unix_path_of(const sockaddr_un& sa, socklen_t len) {
    const auto off = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
    if (len <= off) return {};
    std::size_t n = static_cast<std::size_t>(len - off);
    if (sa.sun_path[0] != '\0') n = ::strnlen(sa.sun_path, n);
    return std::string(sa.sun_path, n);
}

/// A printable form of a Unix path: abstract names as "@name".
inline std::string printable_unix_path(std::string_view path) {
    if (!path.empty() && path.front() == '\0') return "@" + std::string(path.substr(1));
    return std::string(path);
}

/// A printable form of a socket address: "1.2.3.4:80", "[::1]:80", "/path", "@abstract".
inline std::string describe_address(const sockaddr* sa, socklen_t len) {
    if (len >= static_cast<socklen_t>(sizeof(sa_family_t))) {
        if (sa->sa_family == AF_INET || sa->sa_family == AF_INET6) {
            try {
                return endpoint(sa, len).to_string();
            } catch (...) {
                return "?";
            }
        }
        if (sa->sa_family == AF_UNIX)
            return printable_unix_path(unix_path_of(*reinterpret_cast<const sockaddr_un*>(sa), len));
    }
    return "?";
}

/// The peer (or local) address of `fd` for error messages; "?" when unknown.
inline std::string describe_fd(int fd, bool peer) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    const int r = peer ? ::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len)
                       : ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    if (r != 0) return "?";
    return describe_address(reinterpret_cast<sockaddr*>(&ss), len);
}

} // namespace coio::detail
