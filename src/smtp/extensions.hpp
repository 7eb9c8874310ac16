// SMTP service extensions: what a backend's EHLO reply announces, what several backends
// have in common, and the MAIL/RCPT parameters a client may use given what the gateway
// advertised (validated and re-encoded, never passed through as sent). Pure code.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "smtp/command.hpp"

namespace portcullis::smtp {

struct Extensions {
    bool esmtp = false;  // answered EHLO (false: HELO only)
    bool pipelining = false;
    bool size = false;
    std::uint64_t max_size = 0;  // 0 = no limit announced
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool dsn = false;
    bool enhanced_status_codes = false;
    bool starttls = false;
    bool xclient = false;
    std::vector<std::string> xclient_attributes;  // upper case, as announced
    bool operator==(const Extensions&) const = default;
};

// From the lines of a 250 reply to EHLO; the first line (the server's name) is skipped.
// Keywords are case-insensitive; unknown ones are ignored.
Extensions parse_ehlo(std::span<const std::string> lines);

// What every one of `each` supports; SIZE is the smallest announced limit (a backend
// announcing SIZE without a limit does not lower it). Empty input gives {}.
Extensions common_extensions(std::span<const Extensions> each);

// "PIPELINING SIZE=10240000 8BITMIME ..." for logs.
std::string describe(const Extensions& extensions);

// What one client transaction may use: the extensions the gateway advertised to it.
struct Offer {
    std::uint64_t size_limit = 0;  // the SIZE the gateway announced
    bool forward_size = false;     // the backend takes SIZE= as well
    bool eight_bit_mime = false;
    bool smtputf8 = false;
    bool dsn = false;
};

enum class ParamVerdict {
    ok,
    unsupported,     // 555 5.5.4: a parameter of an extension that is not offered
    syntax,          // 501 5.5.4: bad value, or a parameter given twice
    too_big,         // 552 5.3.4: SIZE= over the limit
    needs_smtputf8,  // 553 5.6.7: a non-ASCII address without SMTPUTF8
};

struct ParamOutcome {
    ParamVerdict verdict = ParamVerdict::ok;
    std::string forward;    // re-encoded parameters for the backend, each with a leading space
    bool smtputf8 = false;  // MAIL: the transaction declared SMTPUTF8
};

// MAIL FROM parameters: SIZE, BODY (8BITMIME), SMTPUTF8, RET and ENVID (DSN).
ParamOutcome check_mail(const PathArgument& path, const Offer& offer);

// RCPT TO parameters: NOTIFY and ORCPT (DSN). `smtputf8` tells whether the transaction
// declared SMTPUTF8.
ParamOutcome check_rcpt(const PathArgument& path, const Offer& offer, bool smtputf8);

}  // namespace portcullis::smtp
