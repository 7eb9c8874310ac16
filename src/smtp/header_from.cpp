#include "smtp/header_from.hpp"

#include <string_view>

namespace portcullis::smtp {

namespace {

bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}

bool is_utf8(char c) {
    return static_cast<unsigned char>(c) >= 0x80;
}

// RFC 5322 atext, plus UTF-8 (RFC 6532).
bool is_atext(char c) {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || is_utf8(c)) {
        return true;
    }
    return std::string_view("!#$%&'*+-/=?^_`{|}~").find(c) != std::string_view::npos;
}

// Printable US-ASCII (VCHAR) or UTF-8.
bool is_vchar(char c) {
    return (c >= 0x21 && c <= 0x7e) || is_utf8(c);
}

// A field name character: printable US-ASCII except the colon.
bool is_ftext(char c) {
    return c >= 0x21 && c <= 0x7e && c != ':';
}

char lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

// A recursive-descent parser over one unfolded field body.
class Parser {
  public:
    explicit Parser(std::string_view s) : s_(s) {}

    std::optional<MailboxList> mailbox_list() {
        MailboxList out;
        if (!list(false, out) || !at_end()) {
            return std::nullopt;
        }
        return out;
    }

  private:
    struct Word {
        std::string text;  // unquoted content
        bool dot = false;  // the "." between words
        bool quoted = false;
    };

    bool at_end() const { return i_ >= s_.size(); }
    char peek() const { return s_[i_]; }

    // CFWS: white space and (nested) comments. False on a bad or unterminated comment.
    bool skip_cfws() {
        while (!at_end()) {
            const char c = peek();
            if (is_wsp(c)) {
                ++i_;
            } else if (c == '(') {
                if (!comment()) {
                    return false;
                }
            } else {
                return true;
            }
        }
        return true;
    }

    bool comment() {
        int depth = 0;
        while (!at_end()) {
            const char c = s_[i_++];
            if (c == '(') {
                ++depth;
            } else if (c == ')') {
                if (--depth == 0) {
                    return true;
                }
            } else if (c == '\\') {
                if (at_end() || !(is_vchar(peek()) || is_wsp(peek()))) {
                    return false;
                }
                ++i_;
            } else if (!is_vchar(c) && !is_wsp(c)) {
                return false;
            }
        }
        return false;  // unterminated
    }

    std::optional<std::string> quoted_string() {
        ++i_;  // the opening quote
        std::string out;
        while (!at_end()) {
            const char c = s_[i_++];
            if (c == '"') {
                return out;
            }
            if (c == '\\') {
                if (at_end() || !(is_vchar(peek()) || is_wsp(peek()))) {
                    return std::nullopt;
                }
                out += s_[i_++];
            } else if (is_vchar(c) || is_wsp(c)) {
                out += c;
            } else {
                return std::nullopt;
            }
        }
        return std::nullopt;  // unterminated
    }

    // Atoms, quoted strings and dots up to the next other special; CFWS between them.
    bool words(std::vector<Word>& out) {
        for (;;) {
            if (!skip_cfws()) {
                return false;
            }
            if (at_end()) {
                return true;
            }
            const char c = peek();
            if (c == '"') {
                auto text = quoted_string();
                if (!text) {
                    return false;
                }
                out.push_back({std::move(*text), false, true});
            } else if (c == '.') {
                ++i_;
                out.push_back({".", true, false});
            } else if (is_atext(c)) {
                std::string atom;
                while (!at_end() && is_atext(peek())) {
                    atom += s_[i_++];
                }
                out.push_back({std::move(atom), false, false});
            } else {
                return true;
            }
        }
    }

    // local-part from words: word *("." word), canonical form.
    static std::optional<std::string> local_part(const std::vector<Word>& w) {
        if (w.empty() || w.size() % 2 == 0) {
            return std::nullopt;
        }
        std::string text;
        for (std::size_t k = 0; k < w.size(); ++k) {
            if (w[k].dot != (k % 2 == 1)) {
                return std::nullopt;
            }
            text += w[k].text;
        }
        if (text.empty()) {
            return std::nullopt;
        }
        // Quote again only when the unquoted form is not a dot-atom.
        bool dot_atom =
            text.front() != '.' && text.back() != '.' && text.find("..") == std::string::npos;
        for (char c : text) {
            dot_atom = dot_atom && (is_atext(c) || c == '.');
        }
        if (dot_atom) {
            return text;
        }
        std::string quoted = "\"";
        for (char c : text) {
            if (c == '"' || c == '\\') {
                quoted += '\\';
            }
            quoted += c;
        }
        return quoted + "\"";
    }

    // domain after "@": dot-atom (CFWS allowed around dots) or a domain literal.
    std::optional<std::string> domain() {
        if (!skip_cfws() || at_end()) {
            return std::nullopt;
        }
        if (peek() == '[') {
            std::string out;
            while (!at_end()) {
                const char c = s_[i_++];
                if (is_wsp(c)) {
                    continue;
                }
                if (c == '\\' || (c == '[' && !out.empty()) || !is_vchar(c)) {
                    return std::nullopt;
                }
                out += c;
                if (c == ']') {
                    return out;
                }
            }
            return std::nullopt;
        }
        std::vector<Word> w;
        if (!words(w) || w.empty() || w.size() % 2 == 0) {
            return std::nullopt;
        }
        std::string out;
        for (std::size_t k = 0; k < w.size(); ++k) {
            if (w[k].dot != (k % 2 == 1) || w[k].quoted) {
                return std::nullopt;
            }
            out += w[k].text;
        }
        return out;
    }

    // addr-spec, the local part's words already read.
    bool addr_spec(const std::vector<Word>& local_words, MailboxList& out) {
        auto local = local_part(local_words);
        if (!local || at_end() || peek() != '@') {
            return false;
        }
        ++i_;
        auto dom = domain();
        if (!dom) {
            return false;
        }
        out.addresses.push_back(*local + "@" + *dom);
        return true;
    }

    // "<" [obs-route] addr-spec ">"
    bool angle_addr(MailboxList& out) {
        ++i_;  // "<"
        if (!skip_cfws() || at_end()) {
            return false;
        }
        if (peek() == '@') {  // obs-route: "@a.example,@b.example:" is ignored
            for (;;) {
                if (at_end() || peek() != '@') {
                    return false;
                }
                ++i_;
                if (!domain() || !skip_cfws() || at_end()) {
                    return false;
                }
                if (peek() == ':') {
                    ++i_;
                    break;
                }
                if (peek() != ',') {
                    return false;
                }
                ++i_;
                if (!skip_cfws()) {
                    return false;
                }
            }
        }
        std::vector<Word> local;
        if (!words(local) || !addr_spec(local, out) || !skip_cfws() || at_end() || peek() != '>') {
            return false;
        }
        ++i_;
        return true;
    }

    // One mailbox (or, outside a group, a group).
    bool element(bool in_group, MailboxList& out) {
        std::vector<Word> w;
        if (!words(w) || at_end()) {
            return false;
        }
        const char c = peek();
        if (c == '<') {
            return angle_addr(out);  // `w` is the display name
        }
        if (c == '@') {
            return addr_spec(w, out);
        }
        if (c == ':' && !in_group && !w.empty()) {
            ++i_;
            out.group = true;
            return list(true, out);
        }
        return false;
    }

    // mailbox-list (in a group: up to and including ";").
    bool list(bool in_group, MailboxList& out) {
        for (;;) {
            if (!skip_cfws()) {
                return false;
            }
            if (at_end()) {
                return !in_group;
            }
            if (peek() == ',') {  // obs-mbox-list: empty elements
                ++i_;
                continue;
            }
            if (in_group && peek() == ';') {
                ++i_;
                return true;
            }
            if (!element(in_group, out) || !skip_cfws()) {
                return false;
            }
            if (at_end()) {
                return !in_group;
            }
            if (peek() == ',') {
                ++i_;
            } else if (in_group && peek() == ';') {
                ++i_;
                return true;
            } else {
                return false;
            }
        }
    }

    std::string_view s_;
    std::size_t i_ = 0;
};

}  // namespace

std::optional<MailboxList> parse_mailbox_list(std::string_view body) {
    return Parser(body).mailbox_list();
}

std::string_view verdict_name(HeaderFromScanner::Verdict v) {
    using V = HeaderFromScanner::Verdict;
    switch (v) {
        case V::pending:
            return "pending";
        case V::one:
            return "one";
        case V::none:
            return "no From address";
        case V::several:
            return "several From addresses";
        case V::group:
            return "From is a group";
        case V::malformed:
            return "malformed header";
        case V::too_large:
            return "header block too large";
    }
    return "pending";
}

HeaderFromScanner::Verdict HeaderFromScanner::feed(std::string_view bytes) {
    for (const char c : bytes) {
        if (verdict_ != Verdict::pending) {
            break;
        }
        step(c);
    }
    return verdict_;
}

HeaderFromScanner::Verdict HeaderFromScanner::finish() {
    if (verdict_ == Verdict::pending) {
        if (state_ == State::line_start) {
            end_block();  // the message was all header
        } else {
            decide(Verdict::malformed);  // cut off inside a line
        }
    }
    return verdict_;
}

void HeaderFromScanner::decide(Verdict v) {
    verdict_ = v;
    state_ = State::done;
    std::string().swap(body_);
    std::string().swap(name_);
}

void HeaderFromScanner::step(char c) {
    if (++seen_ > kMaxHeaderBlock) {
        decide(Verdict::too_large);
        return;
    }
    switch (state_) {
        case State::line_start:
            if (dot_stuffed_ && !stuff_checked_) {
                stuff_checked_ = true;
                if (c == '.') {
                    return;  // the dot SMTP dot-stuffing added
                }
            }
            start_line(c);
            return;
        case State::name:
            if (c == ':') {
                break;
            }
            if (is_wsp(c)) {
                state_ = State::name_space;
            } else if (is_ftext(c)) {
                if (name_.size() < 5) {
                    name_ += lower(c);
                }
                ++name_length_;
            } else {
                decide(Verdict::malformed);
            }
            return;
        case State::name_space:
            if (c == ':') {
                break;
            }
            if (!is_wsp(c)) {
                decide(Verdict::malformed);
            }
            return;
        case State::body:
            if (c == '\r') {
                state_ = State::body_cr;
            } else if (c == '\n') {
                decide(Verdict::malformed);
            } else if (capturing_) {
                if (body_.size() >= kMaxFromBody) {
                    decide(Verdict::too_large);
                    return;
                }
                body_ += c;
            }
            return;
        case State::body_cr:
            if (c == '\n') {
                state_ = State::line_start;
                stuff_checked_ = false;
            } else {
                decide(Verdict::malformed);
            }
            return;
        case State::blank_cr:
            if (c == '\n') {
                end_block();
            } else {
                decide(Verdict::malformed);
            }
            return;
        case State::done:
            return;
    }
    // A field name ended with its colon.
    in_field_ = true;
    capturing_ = name_length_ == 4 && name_ == "from";
    state_ = State::body;
    if (capturing_ && ++from_fields_ > 1) {
        decide(Verdict::several);
    }
}

void HeaderFromScanner::start_line(char c) {
    const bool first = first_line_;
    first_line_ = false;
    if (c == '\r') {
        state_ = State::blank_cr;
        return;
    }
    if (is_wsp(c)) {  // a continuation line (folding)
        if (first || !in_field_) {
            decide(Verdict::malformed);
            return;
        }
        if (capturing_) {
            body_ += c;
        }
        state_ = State::body;
        return;
    }
    end_field();
    if (verdict_ != Verdict::pending) {
        return;
    }
    if (!is_ftext(c)) {
        decide(Verdict::malformed);
        return;
    }
    name_.assign(1, lower(c));
    name_length_ = 1;
    state_ = State::name;
}

void HeaderFromScanner::end_field() {
    const bool was_from = in_field_ && capturing_;
    in_field_ = false;
    capturing_ = false;
    if (!was_from) {
        return;
    }
    const auto list = parse_mailbox_list(body_);
    std::string().swap(body_);
    if (!list) {
        decide(Verdict::malformed);
    } else if (list->group) {
        decide(Verdict::group);
    } else if (list->addresses.size() > 1) {
        decide(Verdict::several);
    } else if (list->addresses.empty()) {
        decide(Verdict::none);
    } else {
        address_ = list->addresses.front();
        have_address_ = true;
    }
}

void HeaderFromScanner::end_block() {
    end_field();
    if (verdict_ == Verdict::pending) {
        decide(have_address_ ? Verdict::one : Verdict::none);
    }
}

}  // namespace portcullis::smtp
