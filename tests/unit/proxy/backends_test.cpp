#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "proxy/backends.hpp"

using namespace portcullis;
using namespace std::chrono_literals;
using proxy::BackendState;

namespace {

config::Endpoint endpoint(std::string host, std::uint16_t port) {
    return config::Endpoint{std::move(host), port};
}

std::vector<std::string> texts(const std::vector<config::Endpoint>& endpoints) {
    std::vector<std::string> out;
    for (const auto& e : endpoints) {
        out.push_back(e.text());
    }
    return out;
}

smtp::Extensions ehlo(std::vector<std::string> lines) {
    lines.insert(lines.begin(), "mx");
    return smtp::parse_ehlo(lines);
}

}  // namespace

TEST_CASE("failed backends are tried last until unhealthy_time is over", "[proxy][backends]") {
    util::ManualClock clock;
    BackendState state(clock);
    const std::vector<config::Endpoint> all{endpoint("10.0.0.1", 25), endpoint("10.0.0.2", 25),
                                            endpoint("mx3.internal", 2525)};
    state.configure(all);
    CHECK(texts(state.order(all)) ==
          std::vector<std::string>{"10.0.0.1:25", "10.0.0.2:25", "mx3.internal:2525"});
    state.mark_failed(all[0], 30s);
    clock.advance(1s);
    state.mark_failed(all[1], 30s);
    CHECK_FALSE(state.healthy(all[0]));
    CHECK(texts(state.order(all)) ==
          std::vector<std::string>{"mx3.internal:2525", "10.0.0.1:25", "10.0.0.2:25"});
    clock.advance(29500ms);  // all[0] is back, all[1] not yet
    CHECK(state.healthy(all[0]));
    CHECK(texts(state.order(all)) ==
          std::vector<std::string>{"10.0.0.1:25", "mx3.internal:2525", "10.0.0.2:25"});
    state.mark_healthy(all[1]);  // it answered before its time was up
    CHECK(texts(state.order(all)) == texts(all));
    // a zero hold never skips
    state.mark_failed(all[0], 0s);
    CHECK(texts(state.order(all)) == texts(all));
}

TEST_CASE("what the backends have in common", "[proxy][backends]") {
    util::ManualClock clock;
    BackendState state(clock);
    const auto a = endpoint("10.0.0.1", 25);
    const auto b = endpoint("10.0.0.2", 25);
    state.configure({a, b});
    CHECK(state.common() == nullptr);  // nothing known yet: the conservative set
    CHECK(state.record(a, ehlo({"PIPELINING", "SIZE 5000", "8BITMIME", "DSN", "SMTPUTF8"})));
    REQUIRE(state.common());
    CHECK(state.common()->dsn);
    CHECK(state.common()->max_size == 5000);
    CHECK_FALSE(state.record(a, ehlo({"PIPELINING", "SIZE 5000", "8BITMIME", "DSN", "SMTPUTF8"})));
    CHECK(state.record(b, ehlo({"SIZE 9000", "8BITMIME"})));
    CHECK_FALSE(state.common()->dsn);
    CHECK(state.common()->eight_bit_mime);
    CHECK(state.common()->max_size == 5000);
    // a reload that drops b forgets it
    state.configure({a});
    CHECK(state.common()->dsn);
    // an old server that only knows HELO takes everything away
    CHECK(state.record(a, smtp::Extensions{}));
    CHECK_FALSE(state.common()->esmtp);
}

TEST_CASE("the client offer", "[proxy][backends]") {
    const auto none = proxy::client_offer(nullptr, 1000);
    CHECK(none.parameters.size_limit == 1000);
    CHECK_FALSE(none.parameters.forward_size);
    CHECK_FALSE(none.parameters.eight_bit_mime);
    CHECK_FALSE(none.parameters.smtputf8);
    CHECK_FALSE(none.parameters.dsn);
    CHECK_FALSE(none.enhanced_status_codes);
    const auto small = ehlo({"SIZE 500", "8BITMIME", "ENHANCEDSTATUSCODES", "DSN"});
    const auto offer = proxy::client_offer(&small, 1000);
    CHECK(offer.parameters.size_limit == 500);
    CHECK(offer.parameters.forward_size);
    CHECK(offer.parameters.eight_bit_mime);
    CHECK(offer.parameters.dsn);
    CHECK_FALSE(offer.parameters.smtputf8);
    CHECK(offer.enhanced_status_codes);
    const auto unlimited = ehlo({"SIZE"});
    CHECK(proxy::client_offer(&unlimited, 1000).parameters.size_limit == 1000);
    CHECK(proxy::client_offer(&unlimited, 1000).parameters.forward_size);
}
