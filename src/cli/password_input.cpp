#include "cli/password_input.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <csignal>
#include <string>
#include <string_view>
#include <system_error>

namespace portcullis::cli {

namespace {

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

void write_all(int fd, std::string_view s) {
    while (!s.empty()) {
        const ssize_t w = ::write(fd, s.data(), s.size());
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw PasswordInputError("cannot write to the terminal: " + errno_text(errno));
        }
        s.remove_prefix(static_cast<std::size_t>(w));
    }
}

// State the signal handler needs; set before the handlers are installed and cleared
// after they are removed. Only one EchoOff exists at a time.
constexpr std::array<int, 4> kSignals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
volatile std::sig_atomic_t g_tty_fd = -1;
struct termios g_saved_termios {};
std::array<struct sigaction, kSignals.size()> g_old_actions{};
std::array<bool, kSignals.size()> g_installed{};

extern "C" void restore_echo_and_reraise(int sig) {
    const int fd = g_tty_fd;
    if (fd >= 0) {
        ::tcsetattr(fd, TCSANOW, &g_saved_termios);
        const ssize_t ignored = ::write(fd, "\n", 1);
        static_cast<void>(ignored);
    }
    for (std::size_t i = 0; i < kSignals.size(); ++i) {
        if (kSignals[i] == sig) {
            ::sigaction(sig, &g_old_actions[i], nullptr);
        }
    }
    // Blocked until this handler returns, then delivered with the old disposition.
    ::raise(sig);
}

// Turns terminal echo off for its lifetime and restores it on every path out.
class EchoOff {
  public:
    explicit EchoOff(int fd) : fd_(fd) {
        if (g_tty_fd >= 0) {
            throw PasswordInputError("password prompt already active");
        }
        if (::tcgetattr(fd, &saved_) != 0) {
            throw PasswordInputError("cannot read the terminal settings: " + errno_text(errno));
        }
        g_saved_termios = saved_;
        g_tty_fd = fd;
        for (std::size_t i = 0; i < kSignals.size(); ++i) {
            struct sigaction current {};
            ::sigaction(kSignals[i], nullptr, &current);
            g_installed[i] = false;
            if (current.sa_handler == SIG_IGN) {
                continue;  // an ignored signal cannot interrupt us
            }
            struct sigaction sa {};
            sa.sa_handler = restore_echo_and_reraise;
            sigemptyset(&sa.sa_mask);
            for (const int s : kSignals) {
                sigaddset(&sa.sa_mask, s);
            }
            sa.sa_flags = 0;
            if (::sigaction(kSignals[i], &sa, &g_old_actions[i]) == 0) {
                g_installed[i] = true;
            }
        }
        struct termios quiet = saved_;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHOE | ECHOK | ECHONL);
        if (::tcsetattr(fd, TCSAFLUSH, &quiet) != 0) {
            const int err = errno;
            restore();
            throw PasswordInputError("cannot turn terminal echo off: " + errno_text(err));
        }
    }
    ~EchoOff() { restore(); }
    EchoOff(const EchoOff&) = delete;
    EchoOff& operator=(const EchoOff&) = delete;

  private:
    void restore() {
        ::tcsetattr(fd_, TCSAFLUSH, &saved_);
        for (std::size_t i = 0; i < kSignals.size(); ++i) {
            if (g_installed[i]) {
                ::sigaction(kSignals[i], &g_old_actions[i], nullptr);
                g_installed[i] = false;
            }
        }
        g_tty_fd = -1;
    }

    int fd_;
    struct termios saved_ {};
};

class Fd {
  public:
    explicit Fd(int fd) : fd_(fd) {}
    ~Fd() {
        if (fd_ >= 0) {
            ::close(fd_);
        }
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    int get() const { return fd_; }

  private:
    int fd_;
};

}  // namespace

SecureString read_password_line(int fd) {
    SecureString out;
    bool any = false;
    bool too_long = false;
    bool nul = false;
    char c = 0;
    for (;;) {
        const ssize_t r = ::read(fd, &c, 1);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            sodium_memzero(&c, sizeof c);
            throw PasswordInputError("cannot read the password: " + errno_text(err));
        }
        if (r == 0) {
            break;
        }
        any = true;
        if (c == '\n') {
            break;
        }
        if (c == '\0') {
            nul = true;
        }
        if (out.size() <= max_password_bytes) {
            out.push_back(c);
        } else {
            too_long = true;  // keep reading to the end of the line, keep nothing
        }
    }
    sodium_memzero(&c, sizeof c);
    if (!out.empty() && out.view().back() == '\r') {
        out.pop_back();
    }
    if (!any) {
        throw PasswordInputError("no password given (end of input)");
    }
    if (too_long || out.size() > max_password_bytes) {
        out.wipe();
        throw PasswordInputError("the password is longer than " +
                                 std::to_string(max_password_bytes) + " bytes");
    }
    if (nul) {
        out.wipe();
        throw PasswordInputError("the password contains a NUL byte");
    }
    if (out.empty()) {
        throw PasswordInputError("the password is empty");
    }
    return out;
}

SecureString read_password_tty(int tty_fd, bool confirm) {
    const EchoOff guard(tty_fd);
    // Echo is off, so the Enter key does not move the cursor: end each prompt's line.
    auto ask = [tty_fd](std::string_view prompt) {
        write_all(tty_fd, prompt);
        try {
            SecureString pw = read_password_line(tty_fd);
            write_all(tty_fd, "\n");
            return pw;
        } catch (...) {
            const ssize_t ignored = ::write(tty_fd, "\n", 1);
            static_cast<void>(ignored);
            throw;
        }
    };
    SecureString first = ask("Password: ");
    if (!confirm) {
        return first;
    }
    const SecureString second = ask("Retype password: ");
    if (!(first == second)) {
        first.wipe();
        throw PasswordInputError("the passwords do not match");
    }
    return first;
}

SecureString read_new_password(bool from_stdin, bool confirm) {
    if (from_stdin) {
        return read_password_line(STDIN_FILENO);
    }
    const Fd tty(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (tty.get() < 0) {
        throw PasswordInputError("no terminal to read the password from (" + errno_text(errno) +
                                 "); use --password-stdin");
    }
    return read_password_tty(tty.get(), confirm);
}

}  // namespace portcullis::cli
