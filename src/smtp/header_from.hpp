// Header From checking ([policy] header_from): a pure, streaming scanner that reads
// the header block of a message as it passes and finds its From: address, and an
// RFC 5322 mailbox-list parser. No I/O, bounded memory.
//
// The scanner sees the message as the backend will (CRLF line endings; with
// `dot_stuffed` it undoes the one leading dot SMTP dot-stuffing adds). It unfolds
// continuation lines, matches field names without regard to case and with optional
// white space before the colon (RFC 5322 obsolete syntax, which legacy MTAs accept),
// and stops at the empty line that ends the header block. Anything that could make a
// backend or a mail reader see a different From than the scanner does is a refusal:
// a second From field or a second address, no From at all, a group, a line in the
// header block that is neither a field nor a continuation, a From body it cannot
// parse, or a header block larger than kMaxHeaderBlock (the scanner does not guess at
// what it did not read).
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis::smtp {

// The addresses of an unfolded From: field body (RFC 5322 mailbox-list, with the
// obsolete forms: empty list elements, routes, CFWS around dots; RFC 6532 UTF-8).
// Display names and comments are skipped; quoted local parts are unquoted and quoted
// again only when they need it, so "\"john\"@example.com" gives john@example.com.
// Group syntax ("undisclosed:;") sets `group`. nullopt when the body is malformed.
struct MailboxList {
    std::vector<std::string> addresses;
    bool group = false;
};
std::optional<MailboxList> parse_mailbox_list(std::string_view body);

class HeaderFromScanner {
  public:
    static constexpr std::size_t kMaxHeaderBlock = 256 * 1024;  // bytes inspected
    static constexpr std::size_t kMaxFromBody = 16 * 1024;      // one unfolded From body

    enum class Verdict {
        pending,    // the header block has not been read to its end yet
        one,        // exactly one From address: address()
        none,       // no From field, or one without any address
        several,    // more than one From field or address
        group,      // a group ("name: a@b, c@d;"), which names no single author
        malformed,  // a line or a From body that does not parse
        too_large,  // the header block is larger than kMaxHeaderBlock
    };

    explicit HeaderFromScanner(bool dot_stuffed) : dot_stuffed_(dot_stuffed) {}

    // Feeds the next bytes of the message; returns the verdict so far. Once it is not
    // `pending` it stays as it is and further input is ignored.
    Verdict feed(std::string_view bytes);
    // The message ended: decides a pending verdict (as if the header block ended).
    Verdict finish();
    Verdict verdict() const { return verdict_; }
    // The From address when the verdict is `one`.
    const std::string& address() const { return address_; }

  private:
    enum class State { line_start, name, name_space, body, body_cr, blank_cr, done };
    void step(char c);
    void start_line(char c);
    void end_field();
    void end_block();
    void decide(Verdict v);

    bool dot_stuffed_;
    State state_ = State::line_start;
    Verdict verdict_ = Verdict::pending;
    bool first_line_ = true;      // nothing of the header block seen yet
    bool stuff_checked_ = false;  // the current line's leading stuffed dot was handled
    bool in_field_ = false;       // a field is open (a continuation line may follow)
    bool capturing_ = false;      // the open field is a From field
    std::size_t from_fields_ = 0;
    std::size_t seen_ = 0;  // header bytes so far
    std::string name_;      // the field name so far (only its first 5 bytes)
    std::size_t name_length_ = 0;
    std::string body_;  // the unfolded From body
    std::string address_;
    bool have_address_ = false;
};

std::string_view verdict_name(HeaderFromScanner::Verdict v);

}  // namespace portcullis::smtp
