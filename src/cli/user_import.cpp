#include "cli/user_import.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <iostream>
#include <iterator>
#include <map>
#include <sstream>

#include "auth/password.hpp"
#include "auth/users.hpp"
#include "cli/users_file.hpp"

namespace portcullis::cli {

namespace fs = std::filesystem;

namespace {

// libsodium copies a PHC string into a buffer of crypto_pwhash_argon2id_STRBYTES (128)
// bytes including the NUL; auth::verify_password refuses anything longer.
constexpr std::size_t kMaxHashLength = 127;

constexpr std::string_view kArgon2idPrefix = "$argon2id$";

std::string upper(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
    return out;
}

std::vector<std::string_view> split(std::string_view s, char sep) {
    std::vector<std::string_view> parts;
    for (;;) {
        const auto at = s.find(sep);
        parts.push_back(s.substr(0, at));
        if (at == std::string_view::npos) {
            return parts;
        }
        s.remove_prefix(at + 1);
    }
}

std::optional<std::uint64_t> number(std::string_view s) {
    std::uint64_t v = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || end != s.data() + s.size() || s.empty()) {
        return std::nullopt;
    }
    return v;
}

// What a Dovecot scheme name or an htpasswd/crypt hash prefix is, for the report. Every
// one of these is a one-way hash of another algorithm: only a password reset moves it.
std::string describe_scheme(std::string_view dovecot_scheme, std::string_view hash) {
    if (!dovecot_scheme.empty()) {
        static const std::map<std::string, std::string, std::less<>> kNames{
            {"ARGON2I", "Argon2i (not Argon2id)"},
            {"BLF-CRYPT", "bcrypt"},
            {"SHA512-CRYPT", "SHA-512 crypt"},
            {"SHA256-CRYPT", "SHA-256 crypt"},
            {"MD5-CRYPT", "MD5 crypt"},
            {"PLAIN", "plain text"},
            {"CLEAR", "plain text"},
            {"CRYPT", "DES crypt"},
        };
        const std::string name = upper(dovecot_scheme);
        if (const auto it = kNames.find(name); it != kNames.end()) {
            return "{" + name + "} (" + it->second + ")";
        }
        return "{" + name + "}";
    }
    struct Prefix {
        std::string_view prefix;
        std::string_view name;
    };
    static constexpr Prefix kPrefixes[] = {
        {"$argon2i$", "Argon2i (not Argon2id)"},
        {"$argon2d$", "Argon2d (not Argon2id)"},
        {"$2a$", "bcrypt"},
        {"$2b$", "bcrypt"},
        {"$2y$", "bcrypt"},
        {"$apr1$", "Apache MD5 (apr1)"},
        {"$1$", "MD5 crypt"},
        {"$5$", "SHA-256 crypt"},
        {"$6$", "SHA-512 crypt"},
        {"$y$", "yescrypt"},
        {"$7$", "scrypt"},
    };
    for (const auto& p : kPrefixes) {
        if (hash.starts_with(p.prefix)) {
            return std::string(p.name);
        }
    }
    if (hash.empty()) {
        return "an empty password field";
    }
    if (hash.starts_with("$")) {
        return "an unknown crypt scheme";
    }
    return "plain text or DES crypt";
}

}  // namespace

std::optional<std::string> argon2id_hash_problem(std::string_view hash) {
    if (!hash.starts_with(kArgon2idPrefix)) {
        return "not an Argon2id PHC string (expected "
               "\"$argon2id$v=19$m=...,t=...,p=...$salt$hash\")";
    }
    const auto parts = split(hash, '$');
    // "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
    if (parts.size() == 5 && parts[2].starts_with("m=")) {
        return "Argon2 version 1.0 (no \"v=\"); libsodium verifies only version 1.3 (v=19)";
    }
    if (parts.size() != 6) {
        return "malformed Argon2id PHC string (expected six '$'-separated fields)";
    }
    if (parts[2] != "v=19") {
        return "Argon2 version \"" + std::string(parts[2]) +
               "\" is not supported; libsodium verifies only v=19";
    }
    if (hash.size() > kMaxHashLength) {
        return "the string is " + std::to_string(hash.size()) +
               " characters, libsodium takes at most " + std::to_string(kMaxHashLength) +
               " (a hash output longer than 32 bytes or a long salt)";
    }
    if (!auth::is_argon2id_hash(hash)) {
        return "libsodium cannot decode this Argon2id string (bad parameters, salt or base64)";
    }
    return std::nullopt;
}

std::optional<config::PasswordHashing> argon2id_cost(std::string_view hash) {
    if (argon2id_hash_problem(hash)) {
        return std::nullopt;
    }
    config::PasswordHashing cost{0, 0};
    for (const std::string_view kv : split(split(hash, '$')[3], ',')) {
        if (kv.starts_with("m=")) {
            cost.memlimit = number(kv.substr(2)).value_or(0) * 1024;
        } else if (kv.starts_with("t=")) {
            cost.opslimit = number(kv.substr(2)).value_or(0);
        }
    }
    return cost;
}

ImportParse parse_import(std::string_view text) {
    ImportParse out;
    std::map<std::string, std::uint32_t, std::less<>> seen;
    std::uint32_t line_no = 0;
    for (std::string_view line : split(text, '\n')) {
        ++line_no;
        if (line.ends_with('\r')) {
            line.remove_suffix(1);
        }
        if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) {
            line.remove_prefix(3);
        }
        if (line.empty() || line.starts_with('#') ||
            line.find_first_not_of(" \t") == std::string_view::npos) {
            continue;
        }
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) {
            out.problems.push_back({line_no, false, {}, "no ':' after the user name"});
            continue;
        }
        const std::string name(line.substr(0, colon));
        std::string_view rest = line.substr(colon + 1);
        // Dovecot: the password is the second field; uid, gid, home and extra fields
        // follow. htpasswd: the rest of the line is the hash. Neither an Argon2id string
        // nor a scheme prefix contains ':'.
        std::string_view password = rest.substr(0, rest.find(':'));
        if (const auto problem = user_name_problem(name)) {
            out.problems.push_back({line_no, false, valid_utf8(name) ? name : std::string(),
                                    "invalid user name: " + *problem});
            continue;
        }
        if (const auto it = seen.find(name); it != seen.end()) {
            out.problems.push_back(
                {line_no, false, name, "repeats the user of line " + std::to_string(it->second)});
            continue;
        }
        seen.emplace(name, line_no);

        std::string_view scheme;
        if (password.starts_with('{')) {
            const auto close = password.find('}');
            if (close == std::string_view::npos) {
                out.problems.push_back({line_no, false, name, "a '{' without '}' in the scheme"});
                continue;
            }
            scheme = password.substr(1, close - 1);
            password.remove_prefix(close + 1);
        }
        const bool argon2id =
            scheme.empty() ? password.starts_with(kArgon2idPrefix) : upper(scheme) == "ARGON2ID";
        if (!argon2id) {
            out.problems.push_back({line_no, true, name,
                                    "scheme " + describe_scheme(scheme, password) +
                                        " cannot be imported: only Argon2id hashes can; the "
                                        "user needs a new password"});
            continue;
        }
        if (const auto problem = argon2id_hash_problem(password)) {
            out.problems.push_back({line_no, false, name, *problem});
            continue;
        }
        out.entries.push_back({line_no, name, std::string(password)});
    }
    return out;
}

namespace {

std::string display_name(std::string_view s) {
    return valid_utf8(s) ? toml_basic_string(s) : std::string("(invalid UTF-8)");
}

std::string where(const std::string& source, std::uint32_t line, std::string_view user) {
    std::string s = source + ":" + std::to_string(line) + ": ";
    if (!user.empty()) {
        s += "user " + display_name(user) + ": ";
    }
    return s;
}

// Appends a [users."NAME"] table for each of `added` (none of them in `text`). The
// first goes through add_user, which knows the file's separators and line endings;
// the others are formatted alone (add_user on an empty text) and appended, and the
// result is checked once as a whole, so that importing N users costs O(N), not N
// re-parses of a growing file.
std::string append_users(const std::string& text, const fs::path& file,
                         const std::vector<const ImportEntry*>& added) {
    if (added.empty()) {
        return text;
    }
    const auto before = auth::parse_users(text, file);
    std::string out = add_user(text, file, added.front()->name, added.front()->hash, {});
    const bool crlf = out.find("\r\n") != std::string::npos;
    for (std::size_t i = 1; i < added.size(); ++i) {
        std::string block = "\n" + add_user({}, file, added[i]->name, added[i]->hash, {});
        if (crlf) {
            std::string converted;
            for (const char c : block) {
                converted += c == '\n' ? std::string("\r\n") : std::string(1, c);
            }
            block = std::move(converted);
        }
        out += block;
    }
    // The same guard as every single edit (verify_edit), for all users at once.
    const auto after = auth::parse_users(out, file);
    for (const auto& [name, user] : before->users) {
        const auth::User* now = after->find(name);
        if (now == nullptr || now->password_hash != user.password_hash ||
            now->senders != user.senders || now->disabled != user.disabled) {
            throw UsersFileError(file.string() +
                                 ": refusing to write: the import would change user " +
                                 display_name(name));
        }
    }
    for (const ImportEntry* e : added) {
        const auth::User* now = after->find(e->name);
        if (now == nullptr || now->password_hash != e->hash || !now->senders.empty() ||
            now->disabled) {
            throw UsersFileError(file.string() +
                                 ": refusing to write: the import would not add user " +
                                 display_name(e->name) + " as intended");
        }
    }
    if (after->users.size() != before->users.size() + added.size()) {
        throw UsersFileError(file.string() +
                             ": refusing to write: the import would create other users");
    }
    return out;
}

}  // namespace

int run_user_import(const fs::path& config_file, const ImportOptions& options, Console& io,
                    std::istream& standard_input) {
    try {
        const auto cfg = config::load_config(config_file);
        const fs::path& users_file = cfg->auth.users_file;
        const bool from_stdin = options.source == "-";
        const std::string source_name = from_stdin ? "(stdin)" : options.source.string();
        std::string input;
        if (from_stdin) {
            input.assign(std::istreambuf_iterator<char>(standard_input),
                         std::istreambuf_iterator<char>());
        } else {
            auto text = read_text_file(options.source);
            if (!text) {
                io.err << "portcullis: " << source_name << ": no such file\n";
                return exit_error;
            }
            input = std::move(*text);
        }
        const ImportParse parsed = parse_import(input);

        std::size_t invalid = 0;
        std::size_t unsupported = 0;
        for (const ImportProblem& p : parsed.problems) {
            (p.unsupported ? unsupported : invalid) += 1;
            io.err << where(source_name, p.line, p.user) << p.reason
                   << (p.unsupported && options.skip_unsupported ? " (skipped)" : "") << "\n";
        }

        // Under the lock from here: the check for existing users and the write see the
        // same file.
        std::optional<FileLock> lock;
        if (!options.dry_run) {
            lock.emplace(users_file);
        }
        std::string text = read_text_file(users_file).value_or(std::string());
        const auto existing = auth::parse_users(text, users_file);
        std::size_t clashes = 0;
        for (const ImportEntry& e : parsed.entries) {
            if (existing->find(e.name) != nullptr && !options.replace) {
                ++clashes;
                io.err << where(source_name, e.line, e.name) << "already exists in "
                       << users_file.string() << " (--replace gives it the imported hash)\n";
            }
        }
        for (const ImportEntry& e : parsed.entries) {
            const auto cost = argon2id_cost(e.hash);
            if (cost && (cost->memlimit < cfg->auth.hashing.memlimit ||
                         cost->opslimit < cfg->auth.hashing.opslimit)) {
                io.err << where(source_name, e.line, e.name)
                       << "note: its hash costs m=" << cost->memlimit / 1024
                       << " KiB, t=" << cost->opslimit
                       << ", less than [auth] asks of new hashes (m="
                       << cfg->auth.hashing.memlimit / 1024
                       << " KiB, t=" << cfg->auth.hashing.opslimit
                       << "); it works, and `portcullis user passwd` upgrades it\n";
            }
        }

        const bool refused =
            invalid > 0 || clashes > 0 || (unsupported > 0 && !options.skip_unsupported);
        if (refused) {
            io.err << "portcullis: nothing imported from " << source_name << ": " << invalid
                   << " invalid line(s), " << clashes << " existing user(s), " << unsupported
                   << " unsupported hash(es)";
            if (unsupported > 0 && !options.skip_unsupported && invalid == 0 && clashes == 0) {
                io.err << "; --skip-unsupported imports the " << parsed.entries.size()
                       << " Argon2id user(s) and leaves those out";
            }
            io.err << "\n";
            return exit_error;
        }

        std::size_t replaced = 0;
        std::vector<const ImportEntry*> added;
        for (const ImportEntry& e : parsed.entries) {
            if (existing->find(e.name) != nullptr) {
                require_editable(text, users_file, e.name);
                text = set_password(text, users_file, e.name, e.hash);
                ++replaced;
                io.out << (options.dry_run ? "would replace " : "replaced ") << display_name(e.name)
                       << "\n";
            } else {
                added.push_back(&e);
            }
        }
        text = append_users(text, users_file, added);
        for (const ImportEntry* e : added) {
            io.out << (options.dry_run ? "would add " : "added ") << display_name(e->name) << "\n";
        }
        if (!options.dry_run && added.size() + replaced > 0) {
            atomic_write(users_file, text);
        }
        io.out << (options.dry_run ? "dry run: would import " : "imported ")
               << added.size() + replaced << " user(s) (" << added.size() << " added, " << replaced
               << " replaced), skipped " << unsupported << " with unsupported hashes, from "
               << source_name << " into " << users_file.string();
        if (!options.dry_run && added.size() + replaced > 0) {
            io.out << "; reload the gateway (SIGHUP) to apply";
        }
        io.out << "\n";
        return exit_ok;
    } catch (const std::exception& e) {
        print_error(io.err, e);
        return exit_error;
    }
}

}  // namespace portcullis::cli
