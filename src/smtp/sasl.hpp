// SASL PLAIN (RFC 4616) and LOGIN exchanges for SMTP AUTH (RFC 4954), as pure state
// machines: base64 lines in, 334 challenges or credentials out.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "smtp/reply.hpp"
#include "util/secure.hpp"

namespace portcullis::smtp {

enum class Mechanism { plain, login };

// Case-insensitive "PLAIN" / "LOGIN"; nullopt for anything else.
std::optional<Mechanism> parse_mechanism(std::string_view name);

// Standard base64 (RFC 4648, padding required, no whitespace). nullopt when invalid.
std::optional<SecureString> decode_base64(std::string_view text);
std::string encode_base64(std::string_view bytes);

struct Credentials {
    SecureString authzid;  // empty when the client sent none
    SecureString authcid;  // the user name
    SecureString password;
};

class SaslExchange {
  public:
    explicit SaslExchange(Mechanism mechanism) : mechanism_(mechanism) {}

    struct Step {
        enum class Kind { challenge, done, failed } kind = Kind::failed;
        std::string challenge;                // for `challenge`: full "334 ...\r\n" line
        ReplyId error = ReplyId::bad_base64;  // for `failed`: reply to send
    };

    // `initial` is the AUTH command's initial response, if any ("=" means empty).
    Step start(std::optional<std::string_view> initial);
    // One client line during the exchange. "*" cancels (auth_cancelled).
    Step respond(std::string_view line);

    // Valid after Step::Kind::done; moves the credentials out.
    Credentials take_credentials() { return std::move(credentials_); }
    Mechanism mechanism() const { return mechanism_; }

  private:
    enum class State { idle, want_plain, want_login_user, want_login_password, done };
    Step advance(State state, std::string_view line);
    Step accept_plain(std::string_view base64);
    Step accept_login_user(std::string_view base64);
    Step accept_login_password(std::string_view base64);
    Mechanism mechanism_;
    State state_ = State::idle;
    Credentials credentials_;
};

}  // namespace portcullis::smtp
