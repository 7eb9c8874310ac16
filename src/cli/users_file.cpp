#include "cli/users_file.hpp"

#include <fcntl.h>
#include <sodium.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <system_error>
#include <thread>
#include <toml++/toml.h>

#include "auth/users.hpp"
#include "config/config.hpp"

namespace portcullis::cli {

namespace {

namespace fs = std::filesystem;

constexpr std::string_view kBom = "\xEF\xBB\xBF";

std::string errno_text(int err) {
    return std::generic_category().message(err);
}

[[noreturn]] void refuse(const fs::path& file, std::uint32_t line, std::string_view cause) {
    std::string msg = file.string();
    if (line != 0) {
        msg += ":" + std::to_string(line);
    }
    msg += ": ";
    msg += cause;
    throw UsersFileError(msg);
}

[[noreturn]] void system_failure(const fs::path& file, std::string_view what, int err) {
    throw UsersFileError(file.string() + ": " + std::string(what) + ": " + errno_text(err));
}

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\r';
}

std::string quoted_name(std::string_view name) {
    // For messages: the name as it would appear in a header, escaped when needed.
    return valid_utf8(name) ? toml_basic_string(name) : std::string("(invalid UTF-8)");
}

// The users file as text (lines, byte offsets) and as a toml++ tree (source positions).
class Document {
  public:
    Document(std::string_view text, const fs::path& file) : text_(text), file_(file) {
        snapshot_ = auth::parse_users(text, file);
        try {
            root_ = toml::parse(text, std::string_view(file.string()));
        } catch (const toml::parse_error& e) {
            // parse_users accepted the text, so toml++ should too; report it all the same.
            throw config::ConfigError(
                {config::Diagnostic{file.string(), e.source().begin.line, e.source().begin.column,
                                    std::string(e.description())}});
        }
        if (!text_.empty()) {
            line_starts_.push_back(0);
        }
        for (std::size_t i = 0; i < text_.size(); ++i) {
            if (text_[i] == '\n' && i + 1 < text_.size()) {
                line_starts_.push_back(i + 1);
            }
        }
        const auto first_lf = text_.find('\n');
        if (first_lf != std::string_view::npos && first_lf > 0 && text_[first_lf - 1] == '\r') {
            eol_ = "\r\n";
        }
        collect_headers(root_, true);
        std::sort(headers_.begin(), headers_.end());
        headers_.erase(std::unique(headers_.begin(), headers_.end()), headers_.end());
    }

    const auth::UsersSnapshot& snapshot() const { return *snapshot_; }
    std::string_view text() const { return text_; }
    const std::string& eol() const { return eol_; }
    std::uint32_t line_count() const { return static_cast<std::uint32_t>(line_starts_.size()); }

    // Line `n` (1-based) with its terminator.
    std::string_view raw_line(std::uint32_t n) const {
        const std::size_t begin = line_starts_[n - 1];
        const std::size_t end = n < line_count() ? line_starts_[n] : text_.size();
        return text_.substr(begin, end - begin);
    }
    std::string_view line(std::uint32_t n) const {
        std::string_view l = raw_line(n);
        if (n == 1 && l.starts_with(kBom)) {
            l.remove_prefix(kBom.size());
        }
        if (l.ends_with('\n')) {
            l.remove_suffix(1);
        }
        if (l.ends_with('\r')) {
            l.remove_suffix(1);
        }
        return l;
    }
    bool is_blank(std::uint32_t n) const {
        const std::string_view l = line(n);
        return std::all_of(l.begin(), l.end(), is_space);
    }
    bool is_comment(std::uint32_t n) const {
        const std::string_view l = line(n);
        const auto p = l.find_first_not_of(" \t");
        return p != std::string_view::npos && l[p] == '#';
    }

    // Byte offset of a toml++ source position (columns count code points).
    std::size_t offset(const toml::source_position& pos) const {
        std::size_t i = line_starts_.at(pos.line - 1);
        if (pos.line == 1 && text_.starts_with(kBom)) {
            i += kBom.size();
        }
        for (std::uint32_t col = 1; col < pos.column && i < text_.size(); ++col) {
            ++i;
            while (i < text_.size() && (static_cast<unsigned char>(text_[i]) & 0xC0) == 0x80) {
                ++i;
            }
        }
        return i;
    }

    // True when `pos` is a '[' that starts its line: a table header.
    bool at_header(const toml::source_position& pos) const {
        if (pos.line == 0 || pos.line > line_count()) {
            return false;
        }
        const std::size_t at = offset(pos);
        if (at >= text_.size() || text_[at] != '[') {
            return false;
        }
        const std::string_view l = line(pos.line);
        const auto first = l.find_first_not_of(" \t");
        return first != std::string_view::npos && l.data() + first == text_.data() + at;
    }

    // The first line after `header` that is not part of its block: the next header line,
    // or line_count() + 1.
    std::uint32_t block_end(std::uint32_t header) const {
        const auto it = std::upper_bound(headers_.begin(), headers_.end(), header);
        return it == headers_.end() ? line_count() + 1 : *it;
    }

    struct Located {
        const toml::table* table = nullptr;
        std::uint32_t header = 0;  // line of its [users."NAME"] header
    };

    // Where `name` is defined, or {} when it is not a user. Throws UsersFileError when
    // the definition is in a form the edits cannot change safely.
    Located locate(std::string_view name) const {
        const auth::User* user = snapshot_->find(name);
        if (user == nullptr) {
            return {};
        }
        const toml::table* users = root_["users"].as_table();
        const toml::table* table = users != nullptr ? users->get_as<toml::table>(name) : nullptr;
        if (table == nullptr) {
            refuse(file_, 0,
                   "user " + quoted_name(name) +
                       " is not a table under [users]; edit the file by hand");
        }
        const auto begin = table->source().begin;
        if (users->is_inline() || table->is_inline()) {
            refuse(file_, begin.line,
                   "user " + quoted_name(name) +
                       " is defined as an inline table, which cannot be edited without "
                       "rewriting it; change it to a [users." +
                       quoted_name(name) + "] table or edit the file by hand");
        }
        if (!at_header(begin)) {
            refuse(file_, begin.line,
                   "user " + quoted_name(name) +
                       " is defined with dotted keys, which cannot be edited safely; change "
                       "it to a [users." +
                       quoted_name(name) + "] table or edit the file by hand");
        }
        if (shares_begin(*table, begin)) {
            refuse(file_, begin.line,
                   "user " + quoted_name(name) + " has no [users." + quoted_name(name) +
                       "] table of its own (only sub-tables); edit the file by hand");
        }
        if (const toml::node* pw = table->get("password")) {
            const auto line = pw->source().begin.line;
            if (line < begin.line || line >= block_end(begin.line)) {
                refuse(file_, line,
                       "the password of user " + quoted_name(name) + " is not inside its [users." +
                           quoted_name(name) + "] table; edit the file by hand");
            }
        }
        return {table, begin.line};
    }

    // The line where `name` is defined (0 when unknown).
    std::uint32_t definition_line(std::string_view name) const {
        const toml::node* node = root_["users"][name].node();
        return node != nullptr ? node->source().begin.line : 0;
    }

    Located require(std::string_view name) const {
        const Located at = locate(name);
        if (at.table == nullptr) {
            refuse(file_, 0, "no user " + quoted_name(name));
        }
        return at;
    }

    // Header lines of the tables below `table` (sub-tables, arrays of tables).
    void sub_headers(const toml::node& node, std::vector<std::uint32_t>& out) const {
        if (const toml::table* t = node.as_table()) {
            for (auto&& [key, value] : *t) {
                if (const toml::table* child = value.as_table();
                    child != nullptr && !child->is_inline() && at_header(child->source().begin)) {
                    out.push_back(child->source().begin.line);
                }
                sub_headers(value, out);
            }
        } else if (const toml::array* a = node.as_array()) {
            for (const toml::node& value : *a) {
                if (const toml::table* child = value.as_table();
                    child != nullptr && !child->is_inline() && at_header(child->source().begin)) {
                    out.push_back(child->source().begin.line);
                }
                sub_headers(value, out);
            }
        }
    }

  private:
    void collect_headers(const toml::node& node, bool is_root) {
        if (const toml::table* t = node.as_table()) {
            if (!is_root && !t->is_inline() && at_header(t->source().begin)) {
                headers_.push_back(t->source().begin.line);
            }
            for (auto&& [key, value] : *t) {
                collect_headers(value, false);
            }
        } else if (const toml::array* a = node.as_array()) {
            for (const toml::node& value : *a) {
                collect_headers(value, false);
            }
        }
    }

    // An implicitly created table (by a [users."NAME".sub] header only) carries the
    // source position of that header; so does the sub-table.
    static bool shares_begin(const toml::node& node, const toml::source_position& begin) {
        if (const toml::table* t = node.as_table()) {
            for (auto&& [key, value] : *t) {
                if (const toml::table* child = value.as_table();
                    child != nullptr && child->source().begin == begin) {
                    return true;
                }
                if (shares_begin(value, begin)) {
                    return true;
                }
            }
        } else if (const toml::array* a = node.as_array()) {
            for (const toml::node& value : *a) {
                if (shares_begin(value, begin)) {
                    return true;
                }
            }
        }
        return false;
    }

    std::string_view text_;
    fs::path file_;
    std::shared_ptr<const auth::UsersSnapshot> snapshot_;
    toml::table root_;
    std::vector<std::size_t> line_starts_;
    std::vector<std::uint32_t> headers_;
    std::string eol_ = "\n";
};

void verify_against(const auth::UsersSnapshot& before, std::string_view after_text,
                    const fs::path& file, EditKind kind, std::string_view name,
                    std::string_view password_hash, std::span<const std::string> senders) {
    std::shared_ptr<const auth::UsersSnapshot> after;
    try {
        after = auth::parse_users(after_text, file);
    } catch (const config::ConfigError& e) {
        std::string why;
        for (const auto& d : e.diagnostics()) {
            why += "\n  " + d.text();
        }
        refuse(file, 0,
               "refusing to write: the edited file would not be valid (positions refer to "
               "the edited text):" +
                   why);
    }
    for (const auto& [n, user] : before.users) {
        if (n == name) {
            continue;
        }
        const auth::User* now = after->find(n);
        if (now == nullptr || now->password_hash != user.password_hash ||
            now->senders != user.senders || now->disabled != user.disabled) {
            refuse(file, 0, "refusing to write: the edit would also change user " + quoted_name(n));
        }
    }
    for (const auto& [n, user] : after->users) {
        if (n != name && before.find(n) == nullptr) {
            refuse(file, 0, "refusing to write: the edit would also create user " + quoted_name(n));
        }
    }
    const auth::User* old_user = before.find(name);
    const auth::User* new_user = after->find(name);
    bool ok = false;
    switch (kind) {
        case EditKind::add:
            ok = old_user == nullptr && new_user != nullptr &&
                 new_user->password_hash == password_hash && !new_user->disabled &&
                 std::equal(new_user->senders.begin(), new_user->senders.end(), senders.begin(),
                            senders.end());
            break;
        case EditKind::set_password:
            ok = old_user != nullptr && new_user != nullptr &&
                 new_user->password_hash == password_hash &&
                 new_user->senders == old_user->senders && new_user->disabled == old_user->disabled;
            break;
        case EditKind::remove:
            ok = new_user == nullptr;
            break;
    }
    if (!ok) {
        refuse(file, 0,
               "refusing to write: the edited file would not have the intended change for "
               "user " +
                   quoted_name(name));
    }
}

void require_utf8(const fs::path& file, std::string_view what, std::string_view s) {
    if (!valid_utf8(s)) {
        refuse(file, 0, std::string(what) + " is not valid UTF-8");
    }
}

}  // namespace

bool valid_utf8(std::string_view s) {
    std::size_t i = 0;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        std::size_t len = 0;
        char32_t cp = 0;
        if (c < 0x80) {
            ++i;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > s.size()) {
            return false;
        }
        for (std::size_t k = 1; k < len; ++k) {
            const auto cc = static_cast<unsigned char>(s[i + k]);
            if ((cc & 0xC0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (cc & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
            (cp >= 0xD800 && cp <= 0xDFFF)) {
            return false;
        }
        i += len;
    }
    return true;
}

std::string toml_basic_string(std::string_view s) {
    if (!valid_utf8(s)) {
        throw UsersFileError("cannot write a string that is not valid UTF-8 into a TOML file");
    }
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size() + 2);
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\t':
                out += "\\t";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\r':
                out += "\\r";
                break;
            default:
                if (c < 0x20 || c == 0x7F) {
                    out += "\\u00";
                    out += kHex[c >> 4];
                    out += kHex[c & 0x0F];
                } else {
                    out += ch;
                }
        }
    }
    out += '"';
    return out;
}

std::vector<UserEntry> list_users(std::string_view text, const fs::path& file) {
    const auto snapshot = auth::parse_users(text, file);
    std::vector<UserEntry> out;
    out.reserve(snapshot->users.size());
    for (const auto& [name, user] : snapshot->users) {
        out.push_back(UserEntry{user.name, user.disabled, user.senders});
    }
    std::sort(out.begin(), out.end(),
              [](const UserEntry& a, const UserEntry& b) { return a.name < b.name; });
    return out;
}

void require_absent(std::string_view text, const fs::path& file, std::string_view name) {
    const Document doc(text, file);
    if (doc.snapshot().find(name) != nullptr) {
        refuse(file, doc.definition_line(name), "user " + quoted_name(name) + " already exists");
    }
}

void require_editable(std::string_view text, const fs::path& file, std::string_view name) {
    const Document doc(text, file);
    doc.require(name);
}

std::string add_user(std::string_view text, const fs::path& file, std::string_view name,
                     std::string_view password_hash, std::span<const std::string> senders) {
    require_utf8(file, "the user name", name);
    for (const std::string& s : senders) {
        require_utf8(file, "a sender pattern", s);
    }
    require_absent(text, file, name);
    const Document doc(text, file);
    const std::string& eol = doc.eol();

    std::string out(text);
    if (doc.line_count() > 0) {
        const bool last_blank = doc.is_blank(doc.line_count());
        if (!out.ends_with('\n')) {
            out += eol;
        }
        if (!last_blank) {
            out += eol;
        }
    }
    out += "[users." + toml_basic_string(name) + "]" + eol;
    out += "password = " + toml_basic_string(password_hash) + eol;
    if (!senders.empty()) {
        out += "senders = [";
        for (std::size_t i = 0; i < senders.size(); ++i) {
            out += (i == 0 ? "" : ", ") + toml_basic_string(senders[i]);
        }
        out += "]" + eol;
    }
    verify_against(doc.snapshot(), out, file, EditKind::add, name, password_hash, senders);
    return out;
}

std::string set_password(std::string_view text, const fs::path& file, std::string_view name,
                         std::string_view password_hash) {
    const Document doc(text, file);
    const Document::Located at = doc.require(name);
    std::string out;
    if (const toml::node* pw = at.table->get("password")) {
        const std::size_t begin = doc.offset(pw->source().begin);
        const std::size_t end = doc.offset(pw->source().end);
        if (!pw->is_string() || begin >= end || (text[begin] != '"' && text[begin] != '\'')) {
            refuse(file, pw->source().begin.line,
                   "the password of user " + quoted_name(name) +
                       " is not a string; edit the file by hand");
        }
        out.reserve(text.size() + password_hash.size());
        out.append(text.substr(0, begin));
        out += toml_basic_string(password_hash);
        out.append(text.substr(end));
    } else {
        // No password key yet: put it right below the header.
        const std::string_view header = doc.raw_line(at.header);
        const std::size_t after_header =
            static_cast<std::size_t>(header.data() - text.data()) + header.size();
        out.append(text.substr(0, after_header));
        if (!header.ends_with('\n')) {
            out += doc.eol();
        }
        out += "password = " + toml_basic_string(password_hash) + doc.eol();
        out.append(text.substr(after_header));
    }
    verify_against(doc.snapshot(), out, file, EditKind::set_password, name, password_hash, {});
    return out;
}

std::string delete_user(std::string_view text, const fs::path& file, std::string_view name) {
    const Document doc(text, file);
    const Document::Located at = doc.require(name);
    std::vector<std::uint32_t> headers{at.header};
    doc.sub_headers(*at.table, headers);
    std::sort(headers.begin(), headers.end());
    headers.erase(std::unique(headers.begin(), headers.end()), headers.end());

    const std::uint32_t n = doc.line_count();
    std::vector<bool> drop(n + 2, false);
    for (const std::uint32_t h : headers) {
        const std::uint32_t end = doc.block_end(h);
        if (std::binary_search(headers.begin(), headers.end(), end)) {
            // The next block goes too, with any comments above its header.
            for (std::uint32_t l = h; l < end; ++l) {
                drop[l] = true;
            }
        } else if (end > n) {
            // Last block of the file: drop it and the blank lines that separated it.
            for (std::uint32_t l = h; l <= n; ++l) {
                drop[l] = true;
            }
            for (std::uint32_t l = h - 1; l >= 1 && doc.is_blank(l); --l) {
                drop[l] = true;
            }
        } else {
            // Comment lines directly above the next header belong to that header.
            std::uint32_t keep_from = end;
            while (keep_from - 1 > h && doc.is_comment(keep_from - 1)) {
                --keep_from;
            }
            // Keep one blank line as separator when the block had one and the line
            // before the removed header is not blank already.
            std::uint32_t blank_from = keep_from;
            while (blank_from - 1 > h && doc.is_blank(blank_from - 1)) {
                --blank_from;
            }
            const bool keep_separator =
                blank_from < keep_from && h > 1 && !doc.is_blank(h - 1) && !drop[h - 1];
            for (std::uint32_t l = h; l < keep_from; ++l) {
                drop[l] = !(keep_separator && l == blank_from);
            }
        }
    }
    std::string out;
    out.reserve(text.size());
    if (n > 0 && drop[1] && text.starts_with(kBom)) {
        out += kBom;
    }
    for (std::uint32_t l = 1; l <= n; ++l) {
        if (!drop[l]) {
            out.append(doc.raw_line(l));
        }
    }
    verify_against(doc.snapshot(), out, file, EditKind::remove, name, {}, {});
    return out;
}

void verify_edit(std::string_view before, std::string_view after, const fs::path& file,
                 EditKind kind, std::string_view name, std::string_view password_hash,
                 std::span<const std::string> senders) {
    const auto snapshot = auth::parse_users(before, file);
    verify_against(*snapshot, after, file, kind, name, password_hash, senders);
}

std::optional<std::string> read_text_file(const fs::path& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) {
            return std::nullopt;
        }
        system_failure(file, "cannot open", errno);
    }
    std::string out;
    char buf[16384];
    for (;;) {
        const ssize_t r = ::read(fd, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            const int err = errno;
            ::close(fd);
            system_failure(file, "cannot read", err);
        }
        if (r == 0) {
            break;
        }
        out.append(buf, static_cast<std::size_t>(r));
    }
    ::close(fd);
    return out;
}

void atomic_write(const fs::path& file, std::string_view text) {
    fs::path target = file;
    std::error_code ec;
    if (fs::is_symlink(file, ec)) {
        target = fs::canonical(file, ec);
        if (ec) {
            throw UsersFileError(file.string() +
                                 ": cannot resolve the symbolic link: " + ec.message());
        }
    }
    fs::path dir = target.parent_path();
    if (dir.empty()) {
        dir = ".";
    }

    struct stat old {};
    bool exists = true;
    if (::stat(target.c_str(), &old) != 0) {
        if (errno != ENOENT) {
            system_failure(target, "cannot stat", errno);
        }
        exists = false;
    } else if (!S_ISREG(old.st_mode)) {
        refuse(target, 0, "not a regular file");
    }
    const mode_t mode = exists ? (old.st_mode & 07777) : 0600;

    if (sodium_init() < 0) {
        throw UsersFileError("libsodium failed to initialise");
    }
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof rnd);
    char hex[2 * sizeof rnd + 1];
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    const fs::path tmp = dir / ("." + target.filename().string() + ".tmp-" + hex);

    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        system_failure(target, "cannot create the temporary file " + tmp.string(), errno);
    }
    bool fd_open = true;
    auto fail = [&](std::string_view what, int err) {
        if (fd_open) {
            ::close(fd);
        }
        ::unlink(tmp.c_str());
        system_failure(target, std::string(what) + " the temporary file " + tmp.string(), err);
    };

    if (exists) {
        struct stat now {};
        if (::fstat(fd, &now) != 0) {
            fail("cannot stat", errno);
        }
        if ((now.st_uid != old.st_uid || now.st_gid != old.st_gid) &&
            ::fchown(fd, old.st_uid, old.st_gid) != 0) {
            fail("cannot give the owner " + std::to_string(old.st_uid) + ":" +
                     std::to_string(old.st_gid) + " of the old file to",
                 errno);
        }
    }
    if (::fchmod(fd, mode) != 0) {
        fail("cannot set the mode of", errno);
    }
    std::size_t done = 0;
    while (done < text.size()) {
        const ssize_t w = ::write(fd, text.data() + done, text.size() - done);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            fail("cannot write", errno);
        }
        done += static_cast<std::size_t>(w);
    }
    if (::fsync(fd) != 0) {
        fail("cannot sync", errno);
    }
    fd_open = false;
    if (::close(fd) != 0) {
        fail("cannot close", errno);
    }
    if (::rename(tmp.c_str(), target.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        system_failure(target, "cannot replace it with " + tmp.string(), err);
    }
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0) {
        system_failure(dir, "written, but cannot open the folder to sync it", errno);
    }
    if (::fsync(dfd) != 0) {
        const int err = errno;
        ::close(dfd);
        system_failure(dir, "written, but cannot sync the folder", err);
    }
    ::close(dfd);
}

FileLock::FileLock(const fs::path& file, std::chrono::milliseconds timeout) {
    path_ = file;
    path_ += ".lock";
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd_ < 0) {
        system_failure(path_, "cannot open the lock file", errno);
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (::flock(fd_, LOCK_EX | LOCK_NB) == 0) {
            return;
        }
        const int err = errno;
        if (err == EINTR) {
            continue;
        }
        if (err != EWOULDBLOCK || std::chrono::steady_clock::now() >= deadline) {
            ::close(fd_);
            fd_ = -1;
            if (err == EWOULDBLOCK) {
                refuse(path_, 0,
                       "another process is editing the users file (lock held for more than " +
                           std::to_string(timeout.count()) + " ms)");
            }
            system_failure(path_, "cannot lock", err);
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
}

FileLock::~FileLock() {
    if (fd_ >= 0) {
        ::close(fd_);
    }
}

}  // namespace portcullis::cli
