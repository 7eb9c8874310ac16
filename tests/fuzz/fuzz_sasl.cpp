// Fuzzes base64 and the SASL PLAIN/LOGIN exchanges. The first byte picks the
// mechanism and whether the first line is an initial response; the rest is split at LF
// into client lines.
#include <string>

#include "fuzz_check.hpp"
#include "smtp/sasl.hpp"

using namespace portcullis::smtp;
using Kind = SaslExchange::Step::Kind;

namespace {

void check_base64(std::string_view text) {
    const auto decoded = decode_base64(text);
    if (decoded) {
        FUZZ_CHECK(encode_base64(decoded->view()) == text);  // libsodium is canonical
    }
    const auto encoded = encode_base64(text);
    const auto back = decode_base64(encoded);
    FUZZ_CHECK(back && back->view() == text);
}

bool valid_credential(const portcullis::SecureString& s) {
    return !s.empty() && s.size() <= 255 && s.view().find('\0') == std::string_view::npos;
}

void check_step(const SaslExchange::Step& step) {
    if (step.kind == Kind::challenge) {
        FUZZ_CHECK(step.challenge.starts_with("334 "));
        FUZZ_CHECK(step.challenge.ends_with("\r\n"));
        FUZZ_CHECK(step.challenge.find_first_of("\r\n") == step.challenge.size() - 2);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    auto input = portcullis::fuzz::as_view(data, size);
    check_base64(input);
    if (input.empty()) {
        return 0;
    }
    const auto control = static_cast<unsigned char>(input.front());
    input.remove_prefix(1);
    SaslExchange exchange((control & 1) != 0 ? Mechanism::login : Mechanism::plain);
    const auto next_line = [&input]() {
        const auto lf = input.find('\n');
        const auto line = input.substr(0, lf);
        input = lf == std::string_view::npos ? std::string_view{} : input.substr(lf + 1);
        return line;
    };
    auto step = exchange.start((control & 2) != 0 ? std::optional(next_line()) : std::nullopt);
    while (step.kind == Kind::challenge && !input.empty()) {
        check_step(step);
        step = exchange.respond(next_line());
    }
    check_step(step);
    if (step.kind == Kind::done) {
        const auto c = exchange.take_credentials();
        FUZZ_CHECK(valid_credential(c.authcid));
        FUZZ_CHECK(valid_credential(c.password));
        FUZZ_CHECK(c.authzid.size() <= 255);
        FUZZ_CHECK(exchange.respond("").kind == Kind::failed);
    }
    return 0;
}
