// cli/: reading a new password for `user add`, `user passwd` and `hash`.
// Passwords only ever live in SecureString; every intermediate buffer is wiped.
#pragma once

#include <stdexcept>

#include "util/secure.hpp"

namespace portcullis::cli {

// A password that could not be read (no terminal, end of input, mismatch, too long).
class PasswordInputError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

// Longest password accepted, in bytes.
inline constexpr std::size_t max_password_bytes = 1024;

// Reads one line from `fd` (the trailing LF or CRLF removed). End of input ends the
// line; end of input before any byte is an error, as are NUL bytes (SASL PLAIN could
// never carry them) and lines longer than max_password_bytes.
SecureString read_password_line(int fd);

// Prompts "Password: " (and "Retype password: " when `confirm`) on the terminal `tty_fd`
// with echo off, and refuses when the two differ. Echo is restored on every path,
// including SIGINT, SIGTERM, SIGHUP and SIGQUIT (the signal is then re-raised).
SecureString read_password_tty(int tty_fd, bool confirm);

// --password-stdin: one line from standard input; otherwise from /dev/tty, asked twice
// when `confirm`.
SecureString read_new_password(bool from_stdin, bool confirm);

}  // namespace portcullis::cli
