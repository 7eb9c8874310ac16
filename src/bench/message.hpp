// The bytes every client sends, built once per run: commands, credentials and one
// message of exactly the requested size, dot-stuffed and terminated.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "bench/options.hpp"

namespace portcullis::bench {

struct Script {
    std::string ehlo;
    std::string starttls = "STARTTLS\r\n";
    std::string auth_plain;  // "AUTH PLAIN <initial response>"
    std::string auth_login = "AUTH LOGIN\r\n";
    std::string login_user;  // base64 user name line
    std::string login_pass;  // base64 password line
    std::string mail;
    std::string rcpt;
    std::string data = "DATA\r\n";
    std::string transaction;  // MAIL, RCPT and DATA in one write (PIPELINING)
    std::string body;         // dot-stuffed message followed by ".\r\n"
    std::string quit = "QUIT\r\n";
    std::uint64_t message_size = 0;  // content bytes before dot-stuffing
};

Script make_script(const Options& options);

// A message of exactly `size` bytes (size >= 2): a header block when it fits, then
// 78-byte CRLF lines; every 100th body line starts with a dot so the servers' DATA
// codecs do real work.
std::string make_message(std::uint64_t size, std::string_view from, std::string_view to);

// RFC 5321 4.5.2 transparency plus the end-of-data line. `content` ends with CRLF.
std::string dot_stuff(std::string_view content);

std::string base64(std::string_view bytes);

// --stagger: the messages client `index` of `clients` sends on its first connection
// (then `per_connection` each), so that the clients' reconnects are spread evenly over
// a cycle instead of coming all at once. Never 0.
unsigned staggered_first_session(unsigned index, unsigned clients, unsigned per_connection);

}  // namespace portcullis::bench
