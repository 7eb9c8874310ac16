// The gateway configuration: TOML -> validated, immutable Config.
//
// Keys beyond DESIGN.md (defaults in config.hpp):
//
//   [tls]
//   certificate = "a.pem" or ["ecdsa.pem", "rsa.pem"]   # one or more chains, leaf first
//   private_key = "a.key" or ["ecdsa.key", "rsa.key"]   # paired with certificate by position
//   session_tickets = true, ticket_key_rotation = "12h"  # resumption (1m..7d)
//   signing_threads = 0         # threads for handshake signatures; 0 = the loops sign
//
//   [backend]
//   reply_timeout = "5m"        # longest wait for any backend reply
//   data_reply_timeout = "10m"  # longest wait for the reply after end-of-data
//   pipelining = false          # true: a client's pipelined MAIL..DATA in one write
//
//   [auth]
//   hash_iterations = 3         # Argon2id t for new hashes; at least 2
//   hash_memory = "64MiB"       # Argon2id m for new hashes; at least 19MiB
//   min_password_score = 3      # zxcvbn score 0..4 a new password must reach
//
//   [auth]
//   spray_max_users = "20/1h"   # distinct failing names per /24 (v6 /48), then...
//   spray_lockout = "1h"        # ...that network is locked out this long
//   spray_exemption = "1d"      # addresses that logged in this recently are exempt
//   max_pending_verifications = 16  # Argon2id running or queued; past it 454 4.7.0
//   hash_threads = 0            # Argon2id threads; 0 = CPUs - 1 (at least 1, at most 8)
//
//   [limits]
//   preauth_timeout = "30s"     # connect to successful AUTH
//   data_timeout = "15m"        # 354 to end of data
//   max_bad_commands = 20       # then 421 4.7.0 and close
//   max_line_length = "64KiB"   # longest DATA text line; longer: 554 5.6.0, not delivered
//
//   [rate_limits]
//   bytes = "500MiB/1d"         # also messages, recipients (DESIGN.md); "unlimited"
//
//   [policy]
//   header_from = "off"         # "off" | "envelope" | "senders"
//
//   [[listener]]
//   trusted_proxies = ["10.0.0.0/8"]  # with proxy_protocol = true: who may send PROXY
//
//   [backend]
//   addresses = ["a:25", "b:25"]  # instead of address: several backends, in this order
//   ca_file = "/etc/ssl/certs/ca-certificates.crt"  # tls = "starttls-verify" only
//   tls_name = "mta.example.com"  # expected certificate name; default: the backend host
//   probe_interval = "1m"         # re-read the backends' EHLO; "0s" = start/reload only
//   unhealthy_time = "30s"        # a backend that failed is skipped this long
//
//   [server]
//   drain_timeout = "30s"       # SIGTERM/SIGINT: sessions finish this long, then 421
//
//   [state]                     # where rate limits and lockouts are counted (issue 8)
//   backend = "memory"          # "memory" | "redis"
//   address = "redis://127.0.0.1:6379"  # or "unix:/run/redis/redis.sock"
//   password_file = "redis.pass"  # optional; AUTH with its first line
//   timeout = "50ms"            # per Redis call
//   on_state_error = "local"    # "local" | "fail-closed"
//   key_prefix = "portcullis:"
//
// DESIGN.md keys whose feature is not built yet are refused with "... is not supported
// yet" so that nobody believes they are in force (none at present).
//
// Relative paths (tls certificate/private_key, auth users_file) are resolved against
// the folder of the config file. Files are not opened here: the TLS and auth modules do.
#include "config/config.hpp"

#include <arpa/inet.h>
#include <sodium.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "config/toml_reader.hpp"

namespace portcullis::config {

std::string Endpoint::text() const {
    const bool v6 = host.find(':') != std::string::npos;
    return (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

namespace {

// Binary form of a numeric IPv4/IPv6 address; IPv4-mapped IPv6 becomes IPv4.
bool ip_bytes(std::string_view ip, bool& v6, std::array<unsigned char, 16>& out) {
    if (ip.empty() || ip.size() >= INET6_ADDRSTRLEN) {
        return false;
    }
    const std::string text(ip);
    out.fill(0);
    if (inet_pton(AF_INET, text.c_str(), out.data()) == 1) {
        v6 = false;
        return true;
    }
    if (inet_pton(AF_INET6, text.c_str(), out.data()) != 1) {
        return false;
    }
    constexpr std::array<unsigned char, 12> mapped{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    if (std::equal(mapped.begin(), mapped.end(), out.begin())) {
        std::copy(out.begin() + 12, out.end(), out.begin());
        std::fill(out.begin() + 4, out.end(), 0);
        v6 = false;
        return true;
    }
    v6 = true;
    return true;
}

bool prefix_matches(const std::array<unsigned char, 16>& a, const std::array<unsigned char, 16>& b,
                    unsigned prefix) {
    const unsigned whole = prefix / 8;
    if (!std::equal(a.begin(), a.begin() + whole, b.begin())) {
        return false;
    }
    const unsigned rest = prefix % 8;
    if (rest == 0) {
        return true;
    }
    const auto mask = static_cast<unsigned char>(0xFF << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

}  // namespace

std::string Cidr::text() const {
    char buffer[INET6_ADDRSTRLEN] = {};
    inet_ntop(v6 ? AF_INET6 : AF_INET, bytes.data(), buffer, sizeof(buffer));
    return std::string(buffer) + "/" + std::to_string(prefix);
}

bool Cidr::contains(std::string_view ip) const {
    bool ip_v6 = false;
    std::array<unsigned char, 16> ip_raw{};
    return ip_bytes(ip, ip_v6, ip_raw) && ip_v6 == v6 && prefix_matches(bytes, ip_raw, prefix);
}

std::optional<Cidr> parse_cidr(std::string_view text, std::string& error) {
    const std::string quoted = "\"" + std::string(text) + "\"";
    const std::size_t slash = text.find('/');
    Cidr cidr;
    const std::string_view address = text.substr(0, slash);
    const bool mapped_or_v6 = address.find(':') != std::string_view::npos;
    if (!ip_bytes(address, cidr.v6, cidr.bytes) || (mapped_or_v6 && !cidr.v6)) {
        error = quoted + " is not a network such as \"10.0.0.0/8\" or \"2001:db8::/32\"";
        return std::nullopt;
    }
    const unsigned max_prefix = cidr.v6 ? 128 : 32;
    cidr.prefix = max_prefix;
    if (slash != std::string_view::npos) {
        const std::string_view digits = text.substr(slash + 1);
        unsigned value = 0;
        const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
        if (digits.empty() || digits.size() > 3 || ec != std::errc{} ||
            ptr != digits.data() + digits.size() || value > max_prefix) {
            error = quoted + ": the prefix length must be a number from 0 to " +
                    std::to_string(max_prefix);
            return std::nullopt;
        }
        cidr.prefix = value;
    }
    Cidr network = cidr;
    for (unsigned bit = cidr.prefix; bit < max_prefix; ++bit) {
        network.bytes[bit / 8] &= static_cast<unsigned char>(~(0x80u >> (bit % 8)));
    }
    if (network.bytes != cidr.bytes) {
        error = quoted + " has host bits set; did you mean \"" + network.text() + "\"?";
        return std::nullopt;
    }
    return cidr;
}

std::string Diagnostic::text() const {
    if (line == 0) {
        return file + ": " + message;
    }
    return file + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

namespace {

std::string join_diagnostics(const std::vector<Diagnostic>& diagnostics) {
    std::string out;
    for (const Diagnostic& d : diagnostics) {
        out += (out.empty() ? "" : "\n") + d.text();
    }
    return out;
}

}  // namespace

ConfigError::ConfigError(std::vector<Diagnostic> diagnostics)
    : std::runtime_error(join_diagnostics(diagnostics)), diagnostics_(std::move(diagnostics)) {}

namespace {

using detail::Diagnostics;
using detail::TableReader;

constexpr std::int64_t int_max = std::numeric_limits<std::int64_t>::max();
constexpr std::uint64_t min_hash_memory = 19ull * 1024 * 1024;
constexpr std::uint64_t min_message_size = 1024;

bool is_ascii_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

bool is_dns_label(std::string_view label) {
    return !label.empty() && label.size() <= 63 && label.front() != '-' && label.back() != '-' &&
           std::all_of(label.begin(), label.end(),
                       [](char c) { return is_ascii_alnum(c) || c == '-'; });
}

// A host name such as "mail.example.com" or "mta". The last label may not be all
// digits, so that "10.0.5" is never taken for a name.
bool is_dns_name(std::string_view name) {
    if (name.empty() || name.size() > 253) {
        return false;
    }
    std::string_view last;
    for (std::size_t start = 0;;) {
        const std::size_t dot = name.find('.', start);
        last = name.substr(start,
                           dot == std::string_view::npos ? std::string_view::npos : dot - start);
        if (!is_dns_label(last)) {
            return false;
        }
        if (dot == std::string_view::npos) {
            break;
        }
        start = dot + 1;
    }
    return !std::all_of(last.begin(), last.end(), [](char c) { return c >= '0' && c <= '9'; });
}

bool is_ipv4(const std::string& host) {
    in_addr a{};
    return inet_pton(AF_INET, host.c_str(), &a) == 1;
}

bool is_ipv6(const std::string& host) {
    in6_addr a{};
    return inet_pton(AF_INET6, host.c_str(), &a) == 1;
}

std::optional<std::uint16_t> parse_port(std::string_view text) {
    unsigned value = 0;
    const char* end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc{} || ptr != end || value == 0 || value > 65535) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

std::string default_hostname() {
    std::array<char, 256> buffer{};
    if (::gethostname(buffer.data(), buffer.size() - 1) != 0 || buffer[0] == '\0') {
        return "localhost";
    }
    return buffer.data();
}

std::filesystem::path resolve(const std::filesystem::path& base_dir, std::string_view text) {
    const std::filesystem::path p(text);
    return (p.is_absolute() ? p : base_dir / p).lexically_normal();
}

std::filesystem::path absolute_file(const std::filesystem::path& file) {
    std::error_code ec;
    auto abs = std::filesystem::absolute(file, ec);
    return (ec ? file : abs).lexically_normal();
}

// The table for section `name`, nullptr when absent (or not a table: reported).
const toml::table* section(const toml::table& root, std::string_view name, Diagnostics& diags) {
    const toml::node* node = root.get(name);
    if (node == nullptr) {
        return nullptr;
    }
    if (const auto* table = node->as_table()) {
        return table;
    }
    diags.error(node->source(), "[" + std::string(name) + "] must be a table, got " +
                                    std::string(detail::type_name(*node)));
    return nullptr;
}

// Parses the address at `key` into `out`; reports errors. False when absent or bad.
bool read_endpoint(TableReader& r, std::string_view key, bool allow_names, Endpoint& out) {
    const auto text = r.string(key);
    if (!text) {
        return false;
    }
    std::string why;
    auto endpoint = parse_endpoint(*text, allow_names, why);
    if (!endpoint) {
        r.error(*r.get(key), key, why);
        return false;
    }
    out = std::move(*endpoint);
    return true;
}

void require(TableReader& r, std::string_view key) {
    if (r.table().get(key) == nullptr) {
        r.diags().error(r.table().source(), r.key_path(key) + " is required");
    }
}

// ---- [server] ----

void read_server(TableReader& r, ServerConfig& out) {
    if (auto v = r.nonempty_string("hostname")) {
        if (is_dns_name(*v)) {
            out.hostname = *v;
        } else {
            r.error(*r.get("hostname"), "hostname",
                    "\"" + *v + "\" is not a valid host name (letters, digits, '-' and '.')");
        }
    }
    if (auto v = r.integer("workers", 0, 256)) {
        out.workers = static_cast<unsigned>(*v);
    }
    if (auto v = r.one_of("cpu_affinity", {"none", "auto"})) {
        out.cpu_affinity = *v == "auto";
    }
    if (auto v = r.integer("max_connections", 1, int_max)) {
        out.max_connections = static_cast<std::uint64_t>(*v);
    }
    if (auto v = r.integer("max_connections_per_ip", 1, int_max)) {
        out.max_connections_per_ip = static_cast<std::uint64_t>(*v);
    }
    if (auto v = r.nonempty_string("user")) {
        out.user = *v;
    }
    if (auto v = r.duration("drain_timeout", true)) {
        out.drain_timeout = *v;  // "0s": sessions in progress get 421 at once
    }
}

// ---- [[listener]] ----

ListenerTls listener_tls(std::string_view name) {
    if (name == "implicit") {
        return ListenerTls::implicit;
    }
    return name == "none" ? ListenerTls::none : ListenerTls::starttls;
}

// proxy_protocol and trusted_proxies: one needs the other.
void read_proxy_protocol(TableReader& r, ListenerConfig& out) {
    const auto enabled = r.boolean("proxy_protocol");
    out.proxy_protocol = enabled.value_or(false);
    const toml::node* node = r.get("trusted_proxies");
    if (node != nullptr) {
        const toml::array* array = node->as_array();
        if (array == nullptr || array->empty()) {
            r.error(*node, "trusted_proxies",
                    array == nullptr ? "expected an array such as [\"10.0.0.0/8\"], got " +
                                           std::string(detail::type_name(*node))
                                     : std::string("must list at least one network"));
        } else {
            for (std::size_t i = 0; i < array->size(); ++i) {
                const toml::node& element = *array->get(i);
                const std::string key = "trusted_proxies[" + std::to_string(i) + "]";
                const auto* text = element.as_string();
                std::string why;
                std::optional<Cidr> cidr;
                if (text == nullptr) {
                    why = "expected a string, got " + std::string(detail::type_name(element));
                } else {
                    cidr = parse_cidr(text->get(), why);
                }
                if (cidr) {
                    out.trusted_proxies.push_back(*cidr);
                } else {
                    r.error(element, key, why);
                }
            }
        }
        if (!out.proxy_protocol) {
            r.error(*node, "trusted_proxies", "is only used with proxy_protocol = true");
        }
    }
    if (out.proxy_protocol && node == nullptr) {
        r.error(*r.get("proxy_protocol"), "proxy_protocol",
                "true needs trusted_proxies, the load balancers' networks (e.g. "
                "[\"10.0.0.0/8\"]); a PROXY header from anyone else is refused");
    }
}

// False when the `tls` value is bad (then nobody should ask for its certificate).
bool read_listener(TableReader& r, ListenerConfig& out) {
    require(r, "address");
    read_endpoint(r, "address", false, out.address);
    const auto tls = r.one_of("tls", {"starttls", "implicit", "none"});
    if (tls) {
        out.tls = listener_tls(*tls);
    }
    read_proxy_protocol(r, out);
    return tls.has_value() || r.table().get("tls") == nullptr;
}

// Where a listener's TLS mode is decided: its `tls` value, or the table if defaulted.
const toml::node& tls_origin(const toml::table& listener) {
    const toml::node* node = listener.get("tls");
    return node != nullptr ? *node : listener;
}

struct Listeners {
    std::vector<ListenerConfig> list;
    const toml::node* first_tls = nullptr;  // the first listener needing a certificate
};

void check_duplicate(const Listeners& seen, const ListenerConfig& l, const toml::table& table,
                     Diagnostics& diags) {
    for (const ListenerConfig& other : seen.list) {
        if (!other.address.host.empty() && other.address.text() == l.address.text()) {
            diags.error(table.get("address")->source(),
                        "listener.address: " + l.address.text() + " is used by two listeners");
            return;
        }
    }
}

Listeners read_listeners(const toml::table& root, Diagnostics& diags) {
    Listeners out;
    const toml::node* node = root.get("listener");
    if (node == nullptr) {
        diags.error(1, 1, "at least one [[listener]] is required");
        return out;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr || (!array->empty() && !array->is_array_of_tables())) {
        diags.error(node->source(), "listener: expected an array of tables ([[listener]]), got " +
                                        std::string(detail::type_name(*node)));
        return out;
    }
    if (array->empty()) {
        diags.error(node->source(), "at least one [[listener]] is required");
    }
    for (const toml::node& element : *array) {
        const toml::table& table = *element.as_table();
        TableReader r(table, "listener", "[[listener]]", diags);
        ListenerConfig listener;
        const bool tls_known = read_listener(r, listener);
        r.finish();
        check_duplicate(out, listener, table, diags);
        if (tls_known && listener.tls != ListenerTls::none && out.first_tls == nullptr) {
            out.first_tls = &tls_origin(table);
        }
        out.list.push_back(std::move(listener));
    }
    return out;
}

// ---- [tls] ----

std::optional<TlsVersion> read_min_version(TableReader& r) {
    const toml::node* node = r.get("min_version");
    if (node != nullptr && node->is_floating_point()) {
        r.error(*node, "min_version", "expected a string such as \"1.2\" (in quotes), got a float");
        return std::nullopt;
    }
    auto v = r.one_of("min_version", {"1.2", "1.3"});
    if (!v) {
        return std::nullopt;
    }
    return *v == "1.3" ? TlsVersion::tls1_3 : TlsVersion::tls1_2;
}

// Reads the certificate/private_key pairs. `present` tells whether either key was given.
std::vector<CertificatePair> read_certificates(TableReader& r,
                                               const std::filesystem::path& base_dir,
                                               bool& present) {
    const auto certs = r.string_list("certificate");
    const auto keys = r.string_list("private_key");
    const toml::node* cert_node = r.get("certificate");
    const toml::node* key_node = r.get("private_key");
    present = cert_node != nullptr || key_node != nullptr;
    if ((cert_node == nullptr) != (key_node == nullptr)) {
        const bool has_cert = cert_node != nullptr;
        r.diags().error((has_cert ? cert_node : key_node)->source(),
                        std::string(has_cert ? "tls.certificate is given without tls.private_key"
                                             : "tls.private_key is given without tls.certificate"));
        return {};
    }
    if (!certs || !keys) {
        return {};
    }
    if (certs->size() != keys->size()) {
        r.diags().error(key_node->source(),
                        "tls.private_key lists " + std::to_string(keys->size()) +
                            " file(s) but tls.certificate lists " + std::to_string(certs->size()) +
                            "; they pair up by position");
        return {};
    }
    std::vector<CertificatePair> pairs;
    for (std::size_t i = 0; i < certs->size(); ++i) {
        pairs.push_back({resolve(base_dir, (*certs)[i]), resolve(base_dir, (*keys)[i])});
    }
    return pairs;
}

void read_tls(const toml::table* table, const Listeners& listeners,
              const std::filesystem::path& base_dir, Diagnostics& diags, TlsConfig& out) {
    bool present = false;
    if (table != nullptr) {
        TableReader r(*table, "tls", "[tls]", diags);
        out.certificates = read_certificates(r, base_dir, present);
        if (auto v = read_min_version(r)) {
            out.min_version = *v;
        }
        if (auto v = r.boolean("session_tickets")) {
            out.session_tickets = *v;
        }
        if (auto v = r.integer("signing_threads", 0, 64)) {
            out.signing_threads = static_cast<unsigned>(*v);
        }
        if (auto v = r.duration("ticket_key_rotation", false)) {
            if (*v < std::chrono::minutes(1) || *v > std::chrono::hours(24 * 7)) {
                r.error(*r.get("ticket_key_rotation"), "ticket_key_rotation",
                        "must be between 1m and 7d");
            } else {
                out.ticket_key_rotation = *v;
            }
        }
        r.finish();
    }
    if (listeners.first_tls == nullptr) {
        out.certificates.clear();  // nothing would use them
    } else if (!present) {
        diags.error(listeners.first_tls->source(),
                    "this listener uses TLS, so [tls] certificate and private_key are required");
    }
}

// ---- [backend] ----

void read_backend_modes(TableReader& r, BackendConfig& out) {
    if (auto v = r.one_of("identity", {"none", "xclient", "proxy-v1", "proxy-v2"})) {
        out.identity = *v == "xclient"    ? BackendIdentity::xclient
                       : *v == "proxy-v1" ? BackendIdentity::proxy_v1
                       : *v == "proxy-v2" ? BackendIdentity::proxy_v2
                                          : BackendIdentity::none;
    }
    if (auto v = r.one_of("tls", {"none", "starttls", "starttls-verify"})) {
        out.tls = *v == "starttls"          ? BackendTls::starttls
                  : *v == "starttls-verify" ? BackendTls::starttls_verify
                                            : BackendTls::none;
    }
}

// ca_file and tls_name only mean something with tls = "starttls-verify".
void read_backend_verification(TableReader& r, const std::filesystem::path& base_dir,
                               BackendConfig& out) {
    for (std::string_view key : {"ca_file", "tls_name"}) {
        const toml::node* node = r.get(key);
        if (node != nullptr && out.tls != BackendTls::starttls_verify) {
            r.error(*node, key, "is only used with tls = \"starttls-verify\"");
        }
    }
    if (auto v = r.nonempty_string("ca_file")) {
        out.ca_file = resolve(base_dir, *v);
    }
    if (auto v = r.nonempty_string("tls_name")) {
        if (is_dns_name(*v) || is_ipv4(*v) || is_ipv6(*v)) {
            out.tls_name = *v;
        } else {
            r.error(*r.get("tls_name"), "tls_name",
                    "\"" + *v + "\" is not a host name or an IP address");
        }
    }
}

// `address` (one backend) or `addresses` (several, tried in order), not both.
void read_backend_addresses(TableReader& r, BackendConfig& out) {
    const toml::node* one = r.get("address");
    const toml::node* many = r.get("addresses");
    if (one != nullptr && many != nullptr) {
        r.error(*many, "addresses", "give either backend.address or backend.addresses, not both");
        return;
    }
    if (many == nullptr) {
        require(r, "address");
        if (read_endpoint(r, "address", true, out.address)) {
            out.addresses = {out.address};
        }
        return;
    }
    const toml::array* array = many->as_array();
    if (array == nullptr || array->empty()) {
        r.error(*many, "addresses",
                array == nullptr
                    ? "expected an array such as [\"10.0.0.5:25\", \"10.0.0.6:25\"], got " +
                          std::string(detail::type_name(*many))
                    : std::string("must list at least one backend"));
        return;
    }
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        const std::string key = "addresses[" + std::to_string(i) + "]";
        const auto* text = element.as_string();
        if (text == nullptr) {
            r.error(element, key,
                    "expected a string, got " + std::string(detail::type_name(element)));
            continue;
        }
        std::string why;
        auto endpoint = parse_endpoint(text->get(), true, why);
        if (!endpoint) {
            r.error(element, key, why);
            continue;
        }
        const bool duplicate =
            std::any_of(out.addresses.begin(), out.addresses.end(),
                        [&](const Endpoint& e) { return e.text() == endpoint->text(); });
        if (duplicate) {
            r.error(element, key, endpoint->text() + " is listed twice");
            continue;
        }
        out.addresses.push_back(std::move(*endpoint));
    }
    if (!out.addresses.empty()) {
        out.address = out.addresses.front();
    }
}

void read_backend(TableReader& r, const std::filesystem::path& base_dir, BackendConfig& out) {
    read_backend_addresses(r, out);
    read_backend_modes(r, out);
    read_backend_verification(r, base_dir, out);
    if (auto v = r.duration("connect_timeout", false)) {
        out.connect_timeout = *v;
    }
    if (auto v = r.duration("reply_timeout", false)) {
        out.reply_timeout = *v;
    }
    if (auto v = r.duration("data_reply_timeout", false)) {
        out.data_reply_timeout = *v;
    }
    if (auto v = r.boolean("pipelining")) {
        out.pipelining = *v;
    }
    if (auto v = r.duration("probe_interval", true)) {
        out.probe_interval = *v;
    }
    if (auto v = r.duration("unhealthy_time", true)) {
        out.unhealthy_time = *v;
    }
}

// ---- [auth] ----

char ascii_lower(char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](char x, char y) { return ascii_lower(x) == ascii_lower(y); });
}

void read_mechanisms(TableReader& r, AuthConfig& out) {
    const toml::node* node = r.get("mechanisms");
    if (node == nullptr) {
        return;
    }
    const toml::array* array = node->as_array();
    if (array == nullptr || array->empty()) {
        r.error(*node, "mechanisms",
                array == nullptr ? "expected an array such as [\"PLAIN\", \"LOGIN\"], got " +
                                       std::string(detail::type_name(*node))
                                 : std::string("must list at least one mechanism"));
        return;
    }
    out.mechanism_plain = out.mechanism_login = false;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        const std::string key = "mechanisms[" + std::to_string(i) + "]";
        const auto* s = element.as_string();
        if (s != nullptr && iequals(s->get(), "PLAIN")) {
            out.mechanism_plain = true;
        } else if (s != nullptr && iequals(s->get(), "LOGIN")) {
            out.mechanism_login = true;
        } else {
            r.error(element, key,
                    s == nullptr
                        ? "expected a string, got " + std::string(detail::type_name(element))
                        : "unknown mechanism \"" + s->get() + "\" (use PLAIN or LOGIN)");
        }
    }
}

void read_hashing(TableReader& r, PasswordHashing& out) {
    if (auto v = r.integer("hash_iterations", 2, crypto_pwhash_argon2id_OPSLIMIT_MAX)) {
        out.opslimit = static_cast<std::uint64_t>(*v);
    }
    if (auto v = r.size("hash_memory", min_hash_memory)) {
        const std::uint64_t max = crypto_pwhash_argon2id_MEMLIMIT_MAX;
        if (*v > max || *v % 1024 != 0) {
            r.error(*r.get("hash_memory"), "hash_memory",
                    *v > max ? "must be at most " + std::to_string(max) + " bytes"
                             : std::string("must be a whole number of KiB"));
        } else {
            out.memlimit = *v;
        }
    }
}

// Brute force, spraying, the credential cache and the hashing load cap.
void read_abuse(TableReader& r, AuthConfig& out) {
    if (auto v = r.rate("max_failures", false)) {
        out.max_failures = *v;
    }
    if (auto v = r.duration("lockout", false)) {
        out.lockout = *v;
    }
    if (auto v = r.rate("spray_max_users", false)) {
        out.spray_max_users = *v;
    }
    if (auto v = r.duration("spray_lockout", false)) {
        out.spray_lockout = *v;
    }
    if (auto v = r.duration("spray_exemption", true)) {
        out.spray_exemption = *v;
    }
    if (auto v = r.duration("cache_ttl", true)) {
        out.cache_ttl = *v;
    }
    if (auto v = r.integer("max_pending_verifications", 1, 1'000'000)) {
        out.max_pending_verifications = static_cast<std::uint64_t>(*v);
    }
    if (auto v = r.integer("hash_threads", 0, 64)) {
        out.hash_threads = static_cast<unsigned>(*v);
    }
}

void read_auth(TableReader& r, const std::filesystem::path& base_dir, AuthConfig& out) {
    require(r, "users_file");
    if (auto v = r.nonempty_string("users_file")) {
        out.users_file = resolve(base_dir, *v);
    }
    read_mechanisms(r, out);
    if (auto v = r.duration("failure_delay", true)) {
        out.failure_delay = *v;
    }
    read_hashing(r, out.hashing);
    if (auto v = r.integer("min_password_score", 0, 4)) {
        out.min_password_score = static_cast<int>(*v);
    }
    read_abuse(r, out);
}

// ---- [limits], [log] ----

void read_limits(TableReader& r, LimitsConfig& out) {
    if (auto v = r.size("message_size", min_message_size)) {
        out.message_size = *v;
    }
    if (auto v = r.integer("recipients_per_message", 1, int_max)) {
        out.recipients_per_message = static_cast<std::uint64_t>(*v);
    }
    if (auto v = r.duration("command_timeout", false)) {
        out.command_timeout = *v;
    }
    if (auto v = r.one_of("bare_line_endings", {"reject", "normalize"})) {
        out.bare_line_endings =
            *v == "reject" ? BareLineEndings::reject : BareLineEndings::normalize;
    }
    if (auto v = r.duration("preauth_timeout", false)) {
        out.preauth_timeout = *v;
    }
    if (auto v = r.duration("data_timeout", false)) {
        out.data_timeout = *v;
    }
    if (auto v = r.integer("max_bad_commands", 1, int_max)) {
        out.max_bad_commands = static_cast<std::uint64_t>(*v);
    }
    // RFC 5321 4.5.3.1.6: a server must take text lines of 998 octets (plus CRLF).
    if (auto v = r.size("max_line_length", 998)) {
        out.max_line_length = *v;
    }
}

// ---- [rate_limits], [policy] ----

void read_rate_limits(TableReader& r, RateLimits& out) {
    if (auto v = r.rate("messages", false)) {
        out.messages = *v;
    }
    if (auto v = r.rate("recipients", false)) {
        out.recipients = *v;
    }
    if (auto v = r.rate("bytes", true)) {
        out.bytes = *v;
    }
}

void read_policy(TableReader& r, PolicyConfig& out) {
    if (auto v = r.one_of("header_from", {"off", "envelope", "senders"})) {
        out.header_from = *v == "off"        ? HeaderFrom::off
                          : *v == "envelope" ? HeaderFrom::envelope
                                             : HeaderFrom::senders;
    }
}

LogLevel log_level(std::string_view name) {
    if (name == "debug") {
        return LogLevel::debug;
    }
    if (name == "warn") {
        return LogLevel::warn;
    }
    return name == "error" ? LogLevel::error : LogLevel::info;
}

// The metrics endpoint serves plain HTTP: a numeric address only, and not one a
// listener uses.
void read_metrics(TableReader& r, const std::vector<ListenerConfig>& listeners,
                  MetricsConfig& out) {
    const auto text = r.string("address");
    if (!text || text->empty()) {
        return;  // off
    }
    std::string why;
    auto endpoint = parse_endpoint(*text, false, why);
    if (!endpoint) {
        r.error(*r.get("address"), "address", why);
        return;
    }
    for (const auto& listener : listeners) {
        if (listener.address.text() == endpoint->text()) {
            r.error(*r.get("address"), "address",
                    endpoint->text() + " is already the address of a [[listener]]");
            return;
        }
    }
    out.address = std::move(*endpoint);
}

void read_log(TableReader& r, LogConfig& out) {
    if (auto v = r.one_of("format", {"json", "text"})) {
        out.format = *v == "json" ? LogFormat::json : LogFormat::text;
    }
    if (auto v = r.one_of("level", {"debug", "info", "warn", "error"})) {
        out.level = log_level(*v);
    }
}

// ---- [state] ----

// "redis://host:port" (port defaults to 6379) or "unix:/absolute/path".
bool parse_state_address(std::string_view text, StateConfig& out, std::string& why) {
    constexpr std::string_view redis_scheme = "redis://";
    constexpr std::string_view unix_scheme = "unix:";
    if (text.starts_with(unix_scheme)) {
        const std::string_view path = text.substr(unix_scheme.size());
        if (path.empty() || path.front() != '/') {
            why = "expected \"unix:/absolute/path/to/redis.sock\"";
            return false;
        }
        out.unix_socket = std::string(path);
        return true;
    }
    if (!text.starts_with(redis_scheme)) {
        why =
            "expected \"redis://host:port\" or \"unix:/path\" (rediss:// is not supported: "
            "see tls)";
        return false;
    }
    std::string_view rest = text.substr(redis_scheme.size());
    if (rest.ends_with('/')) {
        rest.remove_suffix(1);
    }
    if (rest.find('@') != std::string_view::npos || rest.find('/') != std::string_view::npos) {
        why = "a password or database in the URL is not supported; use password_file";
        return false;
    }
    std::string host(rest);
    if (!rest.empty() && rest.front() == '[') {
        const std::size_t close = rest.find(']');
        if (close == std::string_view::npos) {
            why = "missing ']' after an IPv6 address";
            return false;
        }
        host = std::string(rest.substr(1, close - 1));
        rest = rest.substr(close + 1);
        if (!rest.empty() && rest.front() != ':') {
            why = "expected ':PORT' after ']'";
            return false;
        }
    } else if (const std::size_t colon = rest.rfind(':'); colon != std::string_view::npos) {
        host = std::string(rest.substr(0, colon));
        rest = rest.substr(colon);
    } else {
        rest = {};
    }
    if (host.empty()) {
        why = "no host";
        return false;
    }
    out.host = host;
    if (!rest.empty()) {  // ":PORT"
        const std::string_view digits = rest.substr(1);
        unsigned port = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
        if (digits.empty() || ec != std::errc{} || end != digits.data() + digits.size() ||
            port == 0 || port > 65535) {
            why = "invalid port \"" + std::string(digits) + "\"";
            return false;
        }
        out.port = static_cast<std::uint16_t>(port);
    }
    return true;
}

// The password is read here, at load, so that a missing or unreadable file is an error
// that names the config line; its permissions are checked by ops::secret_file_problems.
void read_state_password(TableReader& r, const std::filesystem::path& base_dir, StateConfig& out) {
    const auto text = r.nonempty_string("password_file");
    if (!text) {
        return;
    }
    out.password_file = resolve(base_dir, *text);
    std::ifstream in(out.password_file, std::ios::binary);
    std::string password((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in && !in.eof()) {
        r.error(*r.get("password_file"), "password_file",
                "cannot read " + out.password_file.string() + ": " + std::strerror(errno));
        return;
    }
    while (!password.empty() && (password.back() == '\n' || password.back() == '\r')) {
        password.pop_back();  // the newline an editor or `echo` leaves
    }
    if (password.empty()) {
        r.error(*r.get("password_file"), "password_file", out.password_file.string() + " is empty");
        return;
    }
    out.password = std::move(password);
}

void read_state(TableReader& r, const std::filesystem::path& base_dir, StateConfig& out) {
    if (auto v = r.one_of("backend", {"memory", "redis"})) {
        out.backend = *v == "redis" ? StateBackend::redis : StateBackend::memory;
    }
    if (auto v = r.nonempty_string("address")) {
        std::string why;
        if (!parse_state_address(*v, out, why)) {
            r.error(*r.get("address"), "address", "invalid Redis address \"" + *v + "\": " + why);
        } else {
            out.address = *v;
        }
    } else if (out.backend == StateBackend::redis && r.get("address") == nullptr) {
        r.error(r.table(), "address",
                "backend = \"redis\" needs an address (\"redis://host:6379\" or \"unix:/path\")");
    }
    read_state_password(r, base_dir, out);
    if (auto v = r.boolean("tls"); v && *v) {
        r.error(*r.get("tls"), "tls",
                "TLS to Redis is not supported: Debian's hiredis 0.14 has no TLS; reach Redis "
                "over a private network, a unix socket or a TLS tunnel (stunnel, spiped)");
    }
    if (auto v = r.duration("timeout", false)) {
        out.timeout = *v;
    }
    if (auto v = r.one_of("on_state_error", {"local", "fail-closed"})) {
        out.on_error = *v == "local" ? StateErrorMode::local : StateErrorMode::fail_closed;
    }
    if (auto v = r.string("key_prefix")) {
        out.key_prefix = *v;
    }
}

// ---- top level ----

constexpr std::array<std::string_view, 11> section_names{
    "server", "listener",    "tls",    "backend", "auth", "limits",
    "log",    "rate_limits", "policy", "metrics", "state"};

void check_top_level(const toml::table& root, Diagnostics& diags) {
    for (auto&& [key, node] : root) {
        const std::string_view name = key.str();
        if (std::find(section_names.begin(), section_names.end(), name) == section_names.end()) {
            const std::string what = node.is_table() ? "unknown section [" + std::string(name) + "]"
                                                     : "unknown key '" + std::string(name) +
                                                           "' at the top level (outside a section)";
            diags.error(key.source(), what + detail::did_you_mean(name, section_names));
        }
    }
}

// Runs `read` over section `name` when present; otherwise reports it when `required`.
template <class Read>
void read_section(const toml::table& root, std::string_view name, bool required, Diagnostics& diags,
                  Read read) {
    const toml::table* table = section(root, name, diags);
    if (table == nullptr) {
        if (required && root.get(name) == nullptr) {
            diags.error(1, 1, "missing required section [" + std::string(name) + "]");
        }
        return;
    }
    TableReader r(*table, std::string(name), "[" + std::string(name) + "]", diags);
    read(r);
    r.finish();
}

Config build_config(const toml::table& root, const std::filesystem::path& file,
                    Diagnostics& diags) {
    Config c;
    c.file = absolute_file(file);
    c.server.hostname = default_hostname();
    const std::filesystem::path base_dir = c.file.parent_path();
    check_top_level(root, diags);
    read_section(root, "server", false, diags, [&](TableReader& r) { read_server(r, c.server); });
    Listeners listeners = read_listeners(root, diags);
    read_tls(section(root, "tls", diags), listeners, base_dir, diags, c.tls);
    c.listeners = std::move(listeners.list);
    read_section(root, "backend", true, diags,
                 [&](TableReader& r) { read_backend(r, base_dir, c.backend); });
    read_section(root, "auth", true, diags,
                 [&](TableReader& r) { read_auth(r, base_dir, c.auth); });
    read_section(root, "limits", false, diags, [&](TableReader& r) { read_limits(r, c.limits); });
    read_section(root, "rate_limits", false, diags,
                 [&](TableReader& r) { read_rate_limits(r, c.rate_limits); });
    read_section(root, "policy", false, diags, [&](TableReader& r) { read_policy(r, c.policy); });
    read_section(root, "log", false, diags, [&](TableReader& r) { read_log(r, c.log); });
    read_section(root, "metrics", false, diags,
                 [&](TableReader& r) { read_metrics(r, c.listeners, c.metrics); });
    read_section(root, "state", false, diags,
                 [&](TableReader& r) { read_state(r, base_dir, c.state); });
    return c;
}

}  // namespace

std::optional<Endpoint> parse_endpoint(std::string_view text, bool allow_names,
                                       std::string& error) {
    const std::string quoted = "\"" + std::string(text) + "\"";
    std::string host;
    std::string_view port_text;
    if (!text.empty() && text.front() == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            error = "invalid address " + quoted + ": expected [IPv6]:PORT, e.g. \"[::1]:587\"";
            return std::nullopt;
        }
        host = std::string(text.substr(1, close - 1));
        port_text = text.substr(close + 2);
        if (!is_ipv6(host)) {
            error = "invalid address " + quoted + ": \"" + host + "\" is not an IPv6 address";
            return std::nullopt;
        }
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            error = "invalid address " + quoted + ": missing port, expected HOST:PORT";
            return std::nullopt;
        }
        host = std::string(text.substr(0, colon));
        port_text = text.substr(colon + 1);
        if (host.find(':') != std::string::npos) {
            error = "invalid address " + quoted +
                    ": an IPv6 address needs brackets, e.g. \"[::1]:587\"";
            return std::nullopt;
        }
        if (!is_ipv4(host) && !(allow_names && is_dns_name(host))) {
            error = "invalid address " + quoted + ": \"" + host + "\" is not " +
                    (allow_names ? "an IP address or a host name"
                                 : "a numeric IP address (host names are not allowed here)");
            return std::nullopt;
        }
    }
    const auto port = parse_port(port_text);
    if (!port) {
        error = "invalid address " + quoted + ": the port must be a number from 1 to 65535";
        return std::nullopt;
    }
    return Endpoint{std::move(host), *port};
}

std::shared_ptr<const Config> parse_config(std::string_view text,
                                           const std::filesystem::path& file) {
    Diagnostics diags(file.string());
    const auto root = detail::parse_toml(text, diags);
    if (!root) {
        diags.throw_all();
    }
    Config config = build_config(*root, file, diags);
    diags.throw_if_any();
    return std::make_shared<const Config>(std::move(config));
}

std::shared_ptr<const Config> load_config(const std::filesystem::path& file) {
    return parse_config(detail::read_file(file), file);
}

}  // namespace portcullis::config
