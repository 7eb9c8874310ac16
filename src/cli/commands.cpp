#include "cli/commands.hpp"

#include <algorithm>
#include <iostream>
#include <memory>

#include "auth/password.hpp"
#include "auth/users.hpp"
#include "cli/password_input.hpp"
#include "cli/users_file.hpp"
#include "config/config.hpp"
#include "policy/sender_rules.hpp"
#include "ops/security.hpp"
#include "tls/context.hpp"

namespace portcullis::cli {

namespace fs = std::filesystem;

namespace {

std::string printable(std::string_view s) {
    // For messages about rejected input: escaped like a TOML string when possible.
    if (valid_utf8(s)) {
        return toml_basic_string(s);
    }
    return "(invalid UTF-8)";
}

// Checks NAME and --sender before anything else happens; prints the problem.
bool valid_arguments(std::string_view name, std::span<const std::string> senders, Console& io) {
    if (const auto problem = user_name_problem(name)) {
        io.err << "portcullis: invalid user name " << printable(name) << ": " << *problem << "\n";
        return false;
    }
    for (const std::string& s : senders) {
        if (!policy::valid_sender_pattern(s)) {
            io.err << "portcullis: invalid --sender pattern " << printable(s)
                   << ": expected an address (user@example.com) or *@domain\n";
            return false;
        }
    }
    return true;
}

// Reads a new password and turns it into a hash, or prints why not and returns "".
std::string new_password_hash(const config::AuthConfig& auth_cfg,
                              const std::vector<std::string>& words, Console& io) {
    SecureString password = io.read_password(true);
    const auth::Strength strength =
        auth::check_strength(password.view(), auth_cfg.min_password_score, words);
    if (!strength.reason.empty()) {
        password.wipe();
        io.err << "portcullis: password refused: " << strength.reason << "\n";
        return {};
    }
    std::string hash = auth::hash_password(password.view(), auth_cfg.hashing);
    password.wipe();
    return hash;
}

template <class F>
int guarded(Console& io, F&& body) {
    try {
        return body();
    } catch (const std::exception& e) {
        print_error(io.err, e);
        return exit_error;
    }
}

}  // namespace

Console standard_console(bool password_stdin) {
    return Console{std::cout, std::cerr, [password_stdin](bool confirm) {
                       return read_new_password(password_stdin, confirm);
                   }};
}

std::optional<std::string> user_name_problem(std::string_view name) {
    if (name.empty()) {
        return "it is empty";
    }
    if (name.size() > 255) {
        return "it is longer than 255 bytes";
    }
    if (!valid_utf8(name)) {
        return "it is not valid UTF-8";
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const auto c = static_cast<unsigned char>(name[i]);
        if (c < 0x20 || c == 0x7F) {
            return "it contains a control character";
        }
        // C1 controls U+0080..U+009F are encoded as C2 80..C2 9F.
        if (c == 0xC2 && i + 1 < name.size() && static_cast<unsigned char>(name[i + 1]) <= 0x9F) {
            return "it contains a control character";
        }
        if (c == ' ') {
            return "it contains a space";
        }
        if (c == '"') {
            return "it contains a double quote";
        }
        if (c == '\\') {
            return "it contains a backslash";
        }
    }
    return std::nullopt;
}

std::vector<std::string> context_words(std::string_view name) {
    std::vector<std::string> words;
    auto add = [&words](std::string_view w) {
        if (!w.empty() && std::find(words.begin(), words.end(), w) == words.end()) {
            words.emplace_back(w);
        }
    };
    add(name);
    const auto at = name.rfind('@');
    if (at != std::string_view::npos) {
        add(name.substr(0, at));
        std::string_view domain = name.substr(at + 1);
        while (!domain.empty()) {
            const auto dot = domain.find('.');
            add(domain.substr(0, dot));
            if (dot == std::string_view::npos) {
                break;
            }
            domain.remove_prefix(dot + 1);
        }
    }
    return words;
}

void print_error(std::ostream& err, const std::exception& e) {
    if (const auto* ce = dynamic_cast<const config::ConfigError*>(&e)) {
        for (const auto& d : ce->diagnostics()) {
            err << d.text() << "\n";
        }
        if (ce->diagnostics().empty()) {
            err << "portcullis: " << e.what() << "\n";
        }
        return;
    }
    err << "portcullis: " << e.what() << "\n";
}

int run_user_add(const fs::path& config_file, std::string_view name,
                 std::span<const std::string> senders_in, Console& io) {
    std::vector<std::string> senders;
    for (const std::string& s : senders_in) {
        if (std::find(senders.begin(), senders.end(), s) == senders.end()) {
            senders.push_back(s);
        }
    }
    if (!valid_arguments(name, senders, io)) {
        return exit_usage;
    }
    return guarded(io, [&] {
        const auto cfg = config::load_config(config_file);
        const fs::path& users_file = cfg->auth.users_file;
        // Fail early, before asking for a password; checked again under the lock.
        if (const auto text = read_text_file(users_file)) {
            require_absent(*text, users_file, name);
        }
        const std::string hash = new_password_hash(cfg->auth, context_words(name), io);
        if (hash.empty()) {
            return exit_error;
        }
        const FileLock lock(users_file);
        const std::string text = read_text_file(users_file).value_or(std::string());
        atomic_write(users_file, add_user(text, users_file, name, hash, senders));
        io.out << "added user " << printable(name) << " to " << users_file.string()
               << "; reload the gateway (SIGHUP) to apply\n";
        return exit_ok;
    });
}

int run_user_passwd(const fs::path& config_file, std::string_view name, Console& io) {
    if (!valid_arguments(name, {}, io)) {
        return exit_usage;
    }
    return guarded(io, [&] {
        const auto cfg = config::load_config(config_file);
        const fs::path& users_file = cfg->auth.users_file;
        auto read_existing = [&users_file] {
            auto text = read_text_file(users_file);
            if (!text) {
                throw UsersFileError(users_file.string() + ": the users file does not exist");
            }
            return std::move(*text);
        };
        require_editable(read_existing(), users_file, name);
        const std::string hash = new_password_hash(cfg->auth, context_words(name), io);
        if (hash.empty()) {
            return exit_error;
        }
        const FileLock lock(users_file);
        const std::string text = read_existing();
        atomic_write(users_file, set_password(text, users_file, name, hash));
        io.out << "changed the password of user " << printable(name) << " in "
               << users_file.string() << "; reload the gateway (SIGHUP) to apply\n";
        return exit_ok;
    });
}

int run_user_del(const fs::path& config_file, std::string_view name, Console& io) {
    // Any name that exists in the file can be removed, even one `user add` would refuse.
    if (name.empty()) {
        io.err << "portcullis: invalid user name: it is empty\n";
        return exit_usage;
    }
    return guarded(io, [&] {
        const auto cfg = config::load_config(config_file);
        const fs::path& users_file = cfg->auth.users_file;
        const FileLock lock(users_file);
        const auto text = read_text_file(users_file);
        if (!text) {
            throw UsersFileError(users_file.string() + ": the users file does not exist");
        }
        atomic_write(users_file, delete_user(*text, users_file, name));
        io.out << "deleted user " << printable(name) << " from " << users_file.string()
               << "; reload the gateway (SIGHUP) to apply\n";
        return exit_ok;
    });
}

int run_user_list(const fs::path& config_file, Console& io) {
    return guarded(io, [&] {
        const auto cfg = config::load_config(config_file);
        const fs::path& users_file = cfg->auth.users_file;
        const auto text = read_text_file(users_file);
        if (!text) {
            throw UsersFileError(users_file.string() + ": the users file does not exist");
        }
        for (const UserEntry& u : list_users(*text, users_file)) {
            io.out << u.name << '\t' << (u.disabled ? "disabled" : "enabled") << '\t';
            if (u.senders.empty()) {
                io.out << '-';
            }
            for (std::size_t i = 0; i < u.senders.size(); ++i) {
                io.out << (i == 0 ? "" : ",") << u.senders[i];
            }
            io.out << '\n';
        }
        return exit_ok;
    });
}

int run_hash(const std::optional<fs::path>& config_file, Console& io) {
    return guarded(io, [&] {
        config::AuthConfig auth_cfg;
        if (config_file) {
            auth_cfg = config::load_config(*config_file)->auth;
        }
        const std::string hash = new_password_hash(auth_cfg, {}, io);
        if (hash.empty()) {
            return exit_error;
        }
        io.out << hash << '\n';
        return exit_ok;
    });
}

int run_check_config(const fs::path& config_file, Console& io) {
    std::shared_ptr<const config::Config> cfg;
    try {
        cfg = config::load_config(config_file);
    } catch (const std::exception& e) {
        print_error(io.err, e);
        return exit_error;
    }
    bool ok = true;
    std::size_t users = 0;
    try {
        users = auth::load_users(cfg->auth.users_file)->users.size();
    } catch (const std::exception& e) {
        print_error(io.err, e);
        ok = false;
    }
    const bool uses_tls =
        std::any_of(cfg->listeners.begin(), cfg->listeners.end(),
                    [](const auto& l) { return l.tls != config::ListenerTls::none; });
    if (uses_tls) {
        try {
            tls::make_server_context(cfg->tls);
        } catch (const tls::TlsError& e) {
            io.err << e.what() << "\n";  // already "FILE: cause"
            ok = false;
        } catch (const std::exception& e) {
            print_error(io.err, e);
            ok = false;
        }
    }
    if (cfg->backend.tls != config::BackendTls::none) {
        try {
            tls::make_backend_context(cfg->backend);  // loads and checks backend.ca_file
        } catch (const std::exception& e) {
            io.err << e.what() << "\n";
            ok = false;
        }
    }
    for (const auto& problem : ops::secret_file_problems(*cfg)) {
        io.err << problem << "\n";
        ok = false;
    }
    if (!ok) {
        return exit_error;
    }
    io.out << "configuration OK: " << cfg->listeners.size() << " listeners, " << users
           << " users\n";
    return exit_ok;
}

}  // namespace portcullis::cli
