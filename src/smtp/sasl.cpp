#include "smtp/sasl.hpp"

#include <sodium.h>

#include <algorithm>
#include <vector>

namespace portcullis::smtp {
namespace {

constexpr std::size_t kMaxCredential = 255;
constexpr std::string_view kUsernameChallenge = "VXNlcm5hbWU6";  // "Username:"
constexpr std::string_view kPasswordChallenge = "UGFzc3dvcmQ6";  // "Password:"

bool iequals(std::string_view a, std::string_view b) {
    const auto upper = [](char c) {
        return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c;
    };
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [&](char x, char y) { return upper(x) == upper(y); });
}

// libsodium 1.0.18 maps some bytes >= 0x80 to base64 digits ("\x80\x80\x80\x80"
// decodes to ff ff ff), so the alphabet is checked here first.
bool base64_alphabet(std::string_view text) {
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '+' || c == '/' || c == '=';
    });
}

// A temporary byte buffer wiped when it goes out of scope.
class WipedBuffer {
  public:
    explicit WipedBuffer(std::size_t size) : bytes_(size) {}
    WipedBuffer(const WipedBuffer&) = delete;
    WipedBuffer& operator=(const WipedBuffer&) = delete;
    ~WipedBuffer() { sodium_memzero(bytes_.data(), bytes_.size()); }
    unsigned char* data() { return bytes_.data(); }
    std::size_t size() const { return bytes_.size(); }

  private:
    std::vector<unsigned char> bytes_;
};

// A user name or password: non-empty, at most 255 octets, no NUL.
bool valid_credential(std::string_view s) {
    return !s.empty() && s.size() <= kMaxCredential && s.find('\0') == std::string_view::npos;
}

using Step = SaslExchange::Step;

Step challenge(std::string_view base64) {
    Step s;
    s.kind = Step::Kind::challenge;
    s.challenge = single(334, base64);
    return s;
}

Step failed(ReplyId error) {
    Step s;
    s.kind = Step::Kind::failed;
    s.error = error;
    return s;
}

Step done() {
    Step s;
    s.kind = Step::Kind::done;
    return s;
}

// "authzid\0authcid\0password" (RFC 4616) into `out`; false when malformed.
bool split_plain(std::string_view message, Credentials& out) {
    const auto first = message.find('\0');
    if (first == std::string_view::npos) {
        return false;
    }
    const auto second = message.find('\0', first + 1);
    if (second == std::string_view::npos) {
        return false;
    }
    const auto authzid = message.substr(0, first);
    const auto authcid = message.substr(first + 1, second - first - 1);
    const auto password = message.substr(second + 1);
    if (authzid.size() > kMaxCredential || !valid_credential(authcid) ||
        !valid_credential(password)) {
        return false;  // a third NUL lands in `password` and is refused there
    }
    out.authzid = SecureString(authzid);
    out.authcid = SecureString(authcid);
    out.password = SecureString(password);
    return true;
}

}  // namespace

std::optional<Mechanism> parse_mechanism(std::string_view name) {
    if (iequals(name, "PLAIN")) {
        return Mechanism::plain;
    }
    if (iequals(name, "LOGIN")) {
        return Mechanism::login;
    }
    return std::nullopt;
}

std::optional<SecureString> decode_base64(std::string_view text) {
    if (text.empty()) {
        return SecureString{};
    }
    if (!base64_alphabet(text)) {
        return std::nullopt;
    }
    WipedBuffer bin(text.size() / 4 * 3 + 3);
    std::size_t bin_len = 0;
    const char* b64_end = nullptr;
    const int rc = sodium_base642bin(bin.data(), bin.size(), text.data(), text.size(), nullptr,
                                     &bin_len, &b64_end, sodium_base64_VARIANT_ORIGINAL);
    if (rc != 0 || b64_end != text.data() + text.size()) {
        return std::nullopt;
    }
    return SecureString(std::string_view(reinterpret_cast<const char*>(bin.data()), bin_len));
}

std::string encode_base64(std::string_view bytes) {
    const std::size_t max_len =
        sodium_base64_ENCODED_LEN(bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    std::string out(max_len, '\0');
    sodium_bin2base64(out.data(), out.size(), reinterpret_cast<const unsigned char*>(bytes.data()),
                      bytes.size(), sodium_base64_VARIANT_ORIGINAL);
    out.resize(max_len - 1);  // drop the terminating NUL
    return out;
}

SaslExchange::Step SaslExchange::start(std::optional<std::string_view> initial) {
    if (state_ != State::idle) {
        return failed(ReplyId::bad_sequence);
    }
    const std::optional<std::string_view> response =
        initial && *initial == "=" ? std::optional<std::string_view>("") : initial;
    if (mechanism_ == Mechanism::plain) {
        state_ = State::want_plain;
        return response ? respond(*response) : challenge("");
    }
    state_ = State::want_login_user;
    return response ? respond(*response) : challenge(kUsernameChallenge);
}

SaslExchange::Step SaslExchange::respond(std::string_view line) {
    const State state = state_;
    state_ = State::done;  // a failure is final; a challenge sets the next state
    Step step = advance(state, line);
    if (step.kind == Step::Kind::failed) {
        credentials_ = Credentials{};  // wipes whatever was collected
    }
    return step;
}

SaslExchange::Step SaslExchange::advance(State state, std::string_view line) {
    if (state == State::idle || state == State::done) {
        return failed(ReplyId::bad_sequence);
    }
    if (line == "*") {
        return failed(ReplyId::auth_cancelled);
    }
    switch (state) {
        case State::want_plain:
            return accept_plain(line);
        case State::want_login_user:
            return accept_login_user(line);
        case State::want_login_password:
            return accept_login_password(line);
        case State::idle:
        case State::done:
            break;
    }
    return failed(ReplyId::bad_sequence);
}

SaslExchange::Step SaslExchange::accept_login_user(std::string_view base64) {
    auto user = decode_base64(base64);
    if (!user) {
        return failed(ReplyId::bad_base64);
    }
    if (!valid_credential(user->view())) {
        return failed(ReplyId::bad_credentials);
    }
    credentials_.authcid = std::move(*user);
    state_ = State::want_login_password;
    return challenge(kPasswordChallenge);
}

SaslExchange::Step SaslExchange::accept_login_password(std::string_view base64) {
    auto password = decode_base64(base64);
    if (!password) {
        return failed(ReplyId::bad_base64);
    }
    if (!valid_credential(password->view())) {
        return failed(ReplyId::bad_credentials);
    }
    credentials_.password = std::move(*password);
    return done();
}

SaslExchange::Step SaslExchange::accept_plain(std::string_view base64) {
    const auto message = decode_base64(base64);
    if (!message) {
        return failed(ReplyId::bad_base64);
    }
    if (!split_plain(message->view(), credentials_)) {
        return failed(ReplyId::bad_credentials);
    }
    return done();
}

}  // namespace portcullis::smtp
