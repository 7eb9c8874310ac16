// smtp/: pure, I/O-free SMTP protocol code. No sockets, no globals, no clock.
// The one command parser: a client command line (without CRLF) -> Command.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portcullis::smtp {

// Longest command line we accept, CRLF included (RFC 5321 4.5.3.1.4 says 512; we
// allow extra room for MAIL/RCPT parameters as RFC 1870/6531 extensions do).
inline constexpr std::size_t kMaxCommandLine = 512;

enum class Verb {
    ehlo,
    helo,
    mail,
    rcpt,
    data,
    rset,
    noop,
    quit,
    vrfy,
    expn,
    help,
    starttls,
    auth,
    bdat,
    unknown
};

// Bytes a command line may not carry. Controls (NUL, CR, ESC, DEL...; TAB is
// tolerated) have no place in any command, and a legacy backend or log reader may
// take them as a terminator or escape. 8-bit bytes are allowed only in the argument of
// MAIL and RCPT, where the path parser checks them as UTF-8 and the SMTPUTF8 rules
// apply (RFC 6531); anywhere else, EHLO and AUTH included, they are refused.
enum class BadBytes { none, control, non_ascii };

struct Command {
    Verb verb = Verb::unknown;
    std::string_view argument;  // after the verb and one space; trimmed of trailing spaces
    BadBytes bad_bytes = BadBytes::none;  // the session refuses the line unless none
};

// Never fails: an unrecognised verb gives Verb::unknown; bytes a command may not carry
// are reported in bad_bytes (a control wins over an 8-bit byte).
Command parse_command(std::string_view line);

struct Parameter {
    std::string keyword;  // upper-cased
    std::string value;    // as sent; empty when the parameter had no "="
    bool operator==(const Parameter&) const = default;
};

// "FROM:<addr> PARAMS" / "TO:<addr> PARAMS".
struct PathArgument {
    std::string address;  // without angle brackets; empty for the null path "<>"
    std::vector<Parameter> parameters;
};

enum class PathError { syntax, bad_address, bad_parameter };

struct PathResult {
    std::optional<PathArgument> path;
    PathError error = PathError::syntax;  // meaningful when !path
};

// `argument` is Command::argument of a MAIL or RCPT command. The address must be
// ASCII or UTF-8 without controls, spaces or brackets, and at most 254 octets.
PathResult parse_mail_from(std::string_view argument);
PathResult parse_rcpt_to(std::string_view argument);

}  // namespace portcullis::smtp
