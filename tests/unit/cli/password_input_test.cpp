// Reading passwords from a pipe (--password-stdin) and from a terminal (a pty here).
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

#include "cli/password_input.hpp"

namespace {

using namespace portcullis;
using cli::PasswordInputError;

class Pipe {
  public:
    explicit Pipe(std::string_view input) {
        REQUIRE(::pipe(fds_) == 0);
        REQUIRE(::write(fds_[1], input.data(), input.size()) == static_cast<ssize_t>(input.size()));
        ::close(fds_[1]);
    }
    ~Pipe() { ::close(fds_[0]); }
    int fd() const { return fds_[0]; }

  private:
    int fds_[2] = {-1, -1};
};

class Pty {
  public:
    Pty() { REQUIRE(::openpty(&master_, &slave_, nullptr, nullptr, nullptr) == 0); }
    ~Pty() {
        ::close(master_);
        ::close(slave_);
    }
    int master() const { return master_; }
    int slave() const { return slave_; }

    bool echo_on() const {
        struct termios t {};
        REQUIRE(::tcgetattr(slave_, &t) == 0);
        return (t.c_lflag & ECHO) != 0;
    }

    // Reads what the program wrote to the terminal until `needle` shows up (5 s at most).
    bool wait_for(std::string_view needle) {
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (seen_.find(needle) == std::string::npos) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            pollfd p{master_, POLLIN, 0};
            if (::poll(&p, 1, 100) > 0) {
                char buf[256];
                const ssize_t r = ::read(master_, buf, sizeof buf);
                if (r > 0) {
                    seen_.append(buf, static_cast<std::size_t>(r));
                }
            }
        }
        return true;
    }
    void type(std::string_view s) {
        REQUIRE(::write(master_, s.data(), s.size()) == static_cast<ssize_t>(s.size()));
    }
    const std::string& seen() const { return seen_; }

  private:
    int master_ = -1;
    int slave_ = -1;
    std::string seen_;
};

}  // namespace

TEST_CASE("read_password_line strips LF and CRLF and reads one line only", "[cli]") {
    {
        Pipe p("correct horse battery staple\n");
        CHECK(cli::read_password_line(p.fd()).view() == "correct horse battery staple");
    }
    {
        Pipe p("with crlf\r\nsecond line\n");
        CHECK(cli::read_password_line(p.fd()).view() == "with crlf");
        CHECK(cli::read_password_line(p.fd()).view() == "second line");
    }
    {
        Pipe p("no newline at end");
        CHECK(cli::read_password_line(p.fd()).view() == "no newline at end");
    }
    {
        Pipe p("  spaces kept \t\n");
        CHECK(cli::read_password_line(p.fd()).view() == "  spaces kept \t");
    }
    {
        const std::string longest(cli::max_password_bytes, 'x');
        Pipe p(longest + "\r\n");
        CHECK(cli::read_password_line(p.fd()).view() == longest);
    }
}

TEST_CASE("read_password_line refuses missing, empty, NUL and oversized input", "[cli]") {
    {
        Pipe p("");
        CHECK_THROWS_WITH(cli::read_password_line(p.fd()), Catch::Contains("end of input"));
    }
    {
        Pipe p("\n");
        CHECK_THROWS_WITH(cli::read_password_line(p.fd()), Catch::Contains("empty"));
    }
    {
        Pipe p(std::string_view("ab\0cd\n", 6));
        CHECK_THROWS_WITH(cli::read_password_line(p.fd()), Catch::Contains("NUL"));
    }
    {
        Pipe p(std::string(cli::max_password_bytes + 1, 'x') + "\n");
        CHECK_THROWS_WITH(cli::read_password_line(p.fd()), Catch::Contains("longer than"));
    }
}

TEST_CASE("read_password_tty prompts twice with echo off and restores echo", "[cli]") {
    Pty pty;
    REQUIRE(pty.echo_on());
    std::optional<SecureString> result;
    std::string error;
    bool echo_during = true;
    std::thread reader([&] {
        try {
            result = cli::read_password_tty(pty.slave(), true);
        } catch (const std::exception& e) {
            error = e.what();
        }
    });
    REQUIRE(pty.wait_for("Password: "));
    echo_during = pty.echo_on();
    pty.type("tty secret 123\n");
    REQUIRE(pty.wait_for("Retype password: "));
    pty.type("tty secret 123\n");
    reader.join();
    CHECK_FALSE(echo_during);
    CHECK(error.empty());
    REQUIRE(result.has_value());
    CHECK(result->view() == "tty secret 123");
    CHECK(pty.seen().find("tty secret") == std::string::npos);
    CHECK(pty.echo_on());
}

TEST_CASE("read_password_tty refuses different passwords", "[cli]") {
    Pty pty;
    std::string error;
    std::thread reader([&] {
        try {
            cli::read_password_tty(pty.slave(), true);
        } catch (const PasswordInputError& e) {
            error = e.what();
        }
    });
    REQUIRE(pty.wait_for("Password: "));
    pty.type("one password\n");
    REQUIRE(pty.wait_for("Retype password: "));
    pty.type("another password\n");
    reader.join();
    CHECK_THAT(error, Catch::Contains("do not match"));
    CHECK(pty.echo_on());
}

TEST_CASE("read_password_tty without confirmation asks once", "[cli]") {
    Pty pty;
    std::optional<SecureString> result;
    std::thread reader([&] { result = cli::read_password_tty(pty.slave(), false); });
    REQUIRE(pty.wait_for("Password: "));
    pty.type("only once\n");
    reader.join();
    REQUIRE(result.has_value());
    CHECK(result->view() == "only once");
    CHECK(pty.seen().find("Retype") == std::string::npos);
    CHECK(pty.echo_on());
}

TEST_CASE("SIGINT at the password prompt restores echo before the process dies", "[cli]") {
    Pty pty;
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        ::signal(SIGINT, SIG_DFL);  // as in the real CLI (the test runner has its own)
        try {
            cli::read_password_tty(pty.slave(), true);
        } catch (...) {
        }
        ::_exit(0);  // reaching this means the signal did not end the process
    }
    REQUIRE(pty.wait_for("Password: "));
    CHECK_FALSE(pty.echo_on());
    REQUIRE(::kill(child, SIGINT) == 0);
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGINT);
    CHECK(pty.echo_on());
}
