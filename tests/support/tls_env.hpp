// tests/support/tls_env.hpp - the fixture of the TLS tests: throw-away certificates made with
// the openssl command at test time, and child processes (openssl s_server / s_client, curl)
// started and stopped by PID on 127.0.0.1.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace tls_test {

/// Runs a shell command line (setup only, before any loop runs); throws on failure.
inline void sh(const std::string& cmd) {
    if (std::system(cmd.c_str()) != 0) throw std::runtime_error("command failed: " + cmd);
}

/// A temporary directory with a CA, certificates and keys, made once per test process:
///   ca.pem/ca.key            the throw-away CA (CN=coio-test-CA)
///   server.pem/server.key    CN=localhost, SAN DNS:localhost, IP:127.0.0.1, signed by the CA
///   expired.pem              the same key, expired yesterday
///   self.pem/self.key        self-signed, CN=localhost, same SANs
///   client.pem/client.key    CN=coio-client, clientAuth, signed by the CA
///   other_ca.pem             a CA nobody used
struct env {
    std::string dir;

    env() {
        char tmpl[] = "/tmp/coio-tls-test.XXXXXX";
        if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
        dir = tmpl;
        const std::string d = dir + "/";
        const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";
        const std::string q = " >/dev/null 2>&1";
        sh("openssl req -x509" + ec + "-keyout " + d + "ca.key -out " + d + "ca.pem -days 2 -subj /CN=coio-test-CA"
           " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign" + q);
        sh("openssl req -x509" + ec + "-keyout " + d + "other_ca.key -out " + d + "other_ca.pem -days 2 -subj /CN=other-CA" + q);
        std::ofstream(d + "server.ext") << "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
        std::ofstream(d + "client.ext") << "extendedKeyUsage=clientAuth\n";
        sh("openssl req" + ec + "-keyout " + d + "server.key -out " + d + "server.csr -subj /CN=localhost" + q);
        sh("openssl x509 -req -in " + d + "server.csr -CA " + d + "ca.pem -CAkey " + d + "ca.key -CAcreateserial -out " + d +
           "server.pem -days 2 -extfile " + d + "server.ext" + q);
        sh("openssl x509 -req -in " + d + "server.csr -CA " + d + "ca.pem -CAkey " + d + "ca.key -CAcreateserial -out " + d +
           "expired.pem -days -1 -extfile " + d + "server.ext" + q);
        sh("openssl req -x509" + ec + "-keyout " + d + "self.key -out " + d + "self.pem -days 2 -subj /CN=localhost"
           " -addext subjectAltName=DNS:localhost,IP:127.0.0.1" + q);
        sh("openssl req" + ec + "-keyout " + d + "client.key -out " + d + "client.csr -subj /CN=coio-client" + q);
        sh("openssl x509 -req -in " + d + "client.csr -CA " + d + "ca.pem -CAkey " + d + "ca.key -CAcreateserial -out " + d +
           "client.pem -days 2 -extfile " + d + "client.ext" + q);
    }
    ~env() { std::system(("rm -rf '" + dir + "'").c_str()); }
    env(const env&) = delete;
    env& operator=(const env&) = delete;

    [[nodiscard]] std::string path(const std::string& name) const { return dir + "/" + name; }
};

inline env& the_env() {
    static env e;
    return e;
}

/// A free TCP port on 127.0.0.1 (bound, read back, released; the caller binds it next).
inline std::uint16_t free_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
}

/// A child process (argv, stdin from a file, stdout and stderr to files), killed by PID
/// when the object goes.
class child {
public:
    child(std::vector<std::string> argv, const std::string& in, const std::string& out, const std::string& err = "/dev/null") {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 0, in.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        std::vector<char*> args;
        for (auto& a : argv) args.push_back(a.data());
        args.push_back(nullptr);
        const int rc = ::posix_spawnp(&pid_, args[0], &fa, nullptr, args.data(), environ);
        posix_spawn_file_actions_destroy(&fa);
        if (rc != 0) throw std::runtime_error("posix_spawnp " + argv[0] + " failed");
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child() { stop(); }

    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    /// The exit status if the child has exited (non-blocking), else -1.
    int poll() {
        if (pid_ <= 0) return status_;
        int st = 0;
        if (::waitpid(pid_, &st, WNOHANG) == pid_) {
            pid_ = -1;
            status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        }
        return pid_ <= 0 ? status_ : -1;
    }
    /// Kills the child (by PID) and reaps it.
    void stop() {
        if (pid_ > 0) {
            ::kill(pid_, SIGTERM);
            int st = 0;
            ::waitpid(pid_, &st, 0);
            pid_ = -1;
        }
    }

private:
    pid_t pid_ = -1;
    int status_ = -1;
};

/// The whole content of a file.
inline std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

} // namespace tls_test
