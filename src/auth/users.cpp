// The users file: [users."name"] tables -> immutable UsersSnapshot.
#include "auth/users.hpp"

#include <algorithm>

#include "auth/password.hpp"
#include "config/toml_reader.hpp"
#include "policy/sender_rules.hpp"

namespace portcullis::auth {

const User* UsersSnapshot::find(std::string_view name) const {
    const auto it = users.find(std::string(name));
    return it == users.end() ? nullptr : &it->second;
}

config::RateLimits effective_rate_limits(const User& user, const config::RateLimits& defaults) {
    config::RateLimits out = defaults;
    if (user.rate_limits.messages) {
        out.messages = *user.rate_limits.messages;
    }
    if (user.rate_limits.recipients) {
        out.recipients = *user.rate_limits.recipients;
    }
    if (user.rate_limits.bytes) {
        out.bytes = *user.rate_limits.bytes;
    }
    return out;
}

namespace {

using config::detail::Diagnostics;
using config::detail::TableReader;

// "alice@example.com" -> "\"alice@example.com\"", as the name is written in TOML.
std::string toml_quoted(std::string_view name) {
    std::string out = "\"";
    for (char c : name) {
        if (c == '"' || c == '\\') {
            out += '\\';
        }
        out += c;
    }
    return out + "\"";
}

// Why `name` cannot be a login name, or "" when it can.
std::string bad_name(std::string_view name) {
    if (name.empty()) {
        return "a user name must not be empty";
    }
    const bool control = std::any_of(name.begin(), name.end(), [](char c) {
        return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
    });
    return control ? "the user name " + toml_quoted(name) + " contains control characters"
                   : std::string();
}

void read_password(TableReader& r, User& user) {
    if (r.get("password") == nullptr) {
        r.diags().error(r.table().source(), r.key_path("password") + " is required");
        return;
    }
    auto hash = r.string("password");
    if (!hash) {
        return;
    }
    if (!is_argon2id_hash(*hash)) {
        r.error(*r.get("password"), "password",
                "not an Argon2id hash (expected \"$argon2id$v=19$m=...\"; make one with "
                "'portcullis hash' or 'portcullis user passwd')");
        return;
    }
    user.password_hash = std::move(*hash);
}

void read_senders(TableReader& r, User& user) {
    const toml::node* node = r.get("senders");
    if (node == nullptr) {
        return;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr) {
        r.error(*node, "senders",
                "expected an array of strings such as [\"alice@example.com\"], got " +
                    std::string(config::detail::type_name(*node)));
        return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        const std::string key = "senders[" + std::to_string(i) + "]";
        const auto* s = element.as_string();
        if (s == nullptr) {
            r.error(element, key,
                    "expected a string, got " + std::string(config::detail::type_name(element)));
        } else if (!policy::valid_sender_pattern(s->get())) {
            r.error(element, key,
                    "invalid sender pattern \"" + s->get() +
                        "\" (expected an address, \"*@domain\" or \"<>\")");
        } else {
            user.senders.push_back(s->get());
        }
    }
}

void read_rate_limits(TableReader& r, User& user) {
    const toml::node* node = r.get("rate_limits");
    if (node == nullptr) {
        return;
    }
    const toml::table* table = node->as_table();
    if (table == nullptr) {
        r.error(*node, "rate_limits",
                "expected a table such as { messages = \"1000/1h\" }, got " +
                    std::string(config::detail::type_name(*node)));
        return;
    }
    TableReader limits(*table, r.key_path("rate_limits"), r.key_path("rate_limits"), r.diags());
    user.rate_limits.messages = limits.rate("messages", false);
    user.rate_limits.recipients = limits.rate("recipients", false);
    user.rate_limits.bytes = limits.rate("bytes", true);
    limits.finish();
}

std::optional<User> read_user(const toml::key& name, const toml::node& node, Diagnostics& diags) {
    const std::string path = "users." + toml_quoted(name.str());
    if (const std::string why = bad_name(name.str()); !why.empty()) {
        diags.error(name.source(), why);
        return std::nullopt;
    }
    const toml::table* table = node.as_table();
    if (table == nullptr) {
        diags.error(node.source(), path + ": expected a table [" + path + "], got " +
                                       std::string(config::detail::type_name(node)));
        return std::nullopt;
    }
    TableReader r(*table, path, "[" + path + "]", diags);
    User user;
    user.name = std::string(name.str());
    read_password(r, user);
    read_senders(r, user);
    if (auto v = r.boolean("disabled")) {
        user.disabled = *v;
    }
    read_rate_limits(r, user);
    r.finish();
    return user;
}

void read_users(const toml::table& root, Diagnostics& diags, UsersSnapshot& out) {
    for (auto&& [key, node] : root) {
        if (key.str() == "users") {
            continue;
        }
        constexpr std::string_view known[] = {"users"};
        diags.error(key.source(), "unknown key '" + std::string(key.str()) +
                                      "' at the top level (users are [users.\"NAME\"] tables)" +
                                      config::detail::did_you_mean(key.str(), known));
    }
    const toml::node* users = root.get("users");
    if (users == nullptr) {
        return;
    }
    const toml::table* table = users->as_table();
    if (table == nullptr) {
        diags.error(users->source(), "users: expected a table of [users.\"NAME\"] tables, got " +
                                         std::string(config::detail::type_name(*users)));
        return;
    }
    for (auto&& [name, node] : *table) {
        if (auto user = read_user(name, node, diags)) {
            out.users.emplace(user->name, std::move(*user));
        }
    }
}

}  // namespace

std::shared_ptr<const UsersSnapshot> parse_users(std::string_view text,
                                                 const std::filesystem::path& file) {
    Diagnostics diags(file.string());
    const auto root = config::detail::parse_toml(text, diags);
    if (!root) {
        diags.throw_all();
    }
    UsersSnapshot snapshot;
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(file, ec);
    snapshot.file = (ec ? file : absolute).lexically_normal();
    read_users(*root, diags, snapshot);
    diags.throw_if_any();
    return std::make_shared<const UsersSnapshot>(std::move(snapshot));
}

std::shared_ptr<const UsersSnapshot> load_users(const std::filesystem::path& file) {
    return parse_users(config::detail::read_file(file), file);
}

}  // namespace portcullis::auth
