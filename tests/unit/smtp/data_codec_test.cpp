#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "data_codec_model.hpp"
#include "smtp/data_codec.hpp"

using portcullis::smtp::BarePolicy;
using portcullis::smtp::DataDecoder;
using portcullis::smtp::encode_line;
namespace model = portcullis::smtp::model;

namespace {

enum class Caller {
    feed_only,       // every chunk through feed()
    pass_then_feed,  // pass_plain_lines() forwards its run as is, then feed()
    session,         // next_chunk(), as the session calls it: an unfinished last line
                     // is held for the next chunk (ready_for_decoding), then pass, then feed
};

// Feeds `in` split at `cuts` (sorted offsets), stopping at the end of data like a
// caller would; `consumed` is the total over all chunks.
model::Decoded run(std::string_view in, BarePolicy policy, const std::vector<std::size_t>& cuts,
                   Caller caller = Caller::feed_only) {
    DataDecoder decoder(policy);
    model::Decoded d;
    std::size_t start = 0;
    auto bounds = cuts;
    bounds.push_back(in.size());
    for (const std::size_t end : bounds) {
        std::string_view chunk = in.substr(start, end - start);
        const bool more = end < in.size();
        if (caller == Caller::session) {
            const std::size_t ready =
                more ? portcullis::smtp::ready_for_decoding(chunk) : chunk.size();
            std::string scratch;
            const auto c = decoder.next_chunk(chunk, scratch, more);
            d.out.append(c.wire);
            d.consumed += c.consumed;
            if (c.finished) {
                d.finished = true;
                break;
            }
            REQUIRE(c.consumed == ready);
            start += ready;  // a held line is the start of the next chunk
            continue;
        }
        const std::size_t ready = chunk.size();
        std::size_t passed = 0;
        if (caller != Caller::feed_only) {
            passed = decoder.pass_plain_lines(chunk);
            REQUIRE(passed <= chunk.size());
            d.out.append(chunk.substr(0, passed));  // the wire form is the input itself
            chunk.remove_prefix(passed);
        }
        auto r = decoder.feed(chunk, d.out);
        r.consumed += passed;
        d.consumed += r.consumed;
        if (r.finished) {
            d.finished = true;
            break;
        }
        REQUIRE(r.consumed == ready);
        start += ready;  // a held line is the start of the next chunk
    }
    d.bare_seen = decoder.bare_line_ending_seen();
    d.size = decoder.message_size();
    d.longest = decoder.longest_line();
    return d;
}

model::Decoded run(std::string_view in, BarePolicy policy) {
    return run(in, policy, {});
}

void require_same(const model::Decoded& a, const model::Decoded& b) {
    REQUIRE(a.out == b.out);
    REQUIRE(a.consumed == b.consumed);
    REQUIRE(a.finished == b.finished);
    REQUIRE(a.bare_seen == b.bare_seen);
    REQUIRE(a.size == b.size);
    REQUIRE(a.longest == b.longest);
}

std::string encode_all(const std::vector<std::string>& lines) {
    std::string out;
    for (const auto& l : lines) {
        encode_line(l, out);
    }
    return out;
}

constexpr BarePolicy kPolicies[] = {BarePolicy::reject, BarePolicy::normalize};

class RandomInput {
  public:
    explicit RandomInput(std::uint32_t seed) : rng_(seed) {}

    // Bytes biased towards the ones that matter: CR, LF, ".", plus text and any byte.
    std::string bytes(std::size_t max_len) {
        static constexpr char kAlphabet[] = {'\r', '\n', '.', '.', 'a', 'M', ' ', '\r', '\n'};
        std::string s(pick(max_len), '\0');
        for (auto& c : s) {
            const auto k = pick(sizeof kAlphabet);
            c = k < sizeof kAlphabet ? kAlphabet[k] : static_cast<char>(pick(255));
        }
        return s;
    }

    // Lines without CR/LF, often starting with dots.
    std::vector<std::string> lines(std::size_t max_lines) {
        std::vector<std::string> out(pick(max_lines));
        for (auto& line : out) {
            line = bytes(8);
            std::erase_if(line, [](char c) { return c == '\r' || c == '\n'; });
        }
        return out;
    }

    std::vector<std::size_t> cuts(std::size_t size) {
        std::vector<std::size_t> out(pick(5));
        for (auto& c : out) {
            c = pick(size);
        }
        std::sort(out.begin(), out.end());
        return out;
    }

    // Mostly ordinary CRLF lines (so runs of them fill the decoder's 64-byte blocks),
    // with a few of the bytes that matter placed anywhere: a lone CR or LF, a line
    // starting with ".", an empty line, the end marker.
    std::string plain_text(std::size_t max_len) {
        static constexpr std::string_view kSpecial[] = {
            "\r", "\n", ".", "\r\n.", "\r\n\r\n", ".\r\n", "\r\n.\r\n", "..", "\n."};
        std::string s;
        const std::size_t target = pick(max_len);
        while (s.size() < target) {
            const std::size_t length = pick(90);
            for (std::size_t i = 0; i < length; ++i) {
                s.push_back(static_cast<char>('a' + pick(25)));
            }
            s += "\r\n";
            if (pick(12) == 0) {
                const auto& special = kSpecial[pick(std::size(kSpecial) - 1)];
                s.insert(pick(s.size()), special);
            }
        }
        return s;
    }

    // Uniform in [0, n].
    std::size_t pick(std::size_t n) {
        return std::uniform_int_distribution<std::size_t>(0, n)(rng_);
    }

  private:
    std::mt19937 rng_;
};

}  // namespace

TEST_CASE("encode_line doubles a leading dot and adds CRLF", "[smtp][data]") {
    std::string out;
    encode_line("", out);
    encode_line(".", out);
    encode_line("..x", out);
    encode_line("a.b", out);
    REQUIRE(out == "\r\n..\r\n...x\r\na.b\r\n");
}

TEST_CASE("DATA decoding of plain messages", "[smtp][data]") {
    for (const auto policy : kPolicies) {
        SECTION("simple message") {
            const auto d = run("Subject: x\r\n\r\nbody\r\n.\r\n", policy);
            REQUIRE(d.finished);
            REQUIRE(d.out == "Subject: x\r\n\r\nbody\r\n");
            REQUIRE(d.size == 20);
            REQUIRE(d.longest == 10);
            REQUIRE_FALSE(d.bare_seen);
        }
        SECTION("empty message ends at the very start") {
            const auto d = run(".\r\nQUIT\r\n", policy);
            REQUIRE(d.finished);
            REQUIRE(d.consumed == 3);
            REQUIRE(d.out.empty());
            REQUIRE(d.size == 0);
        }
        SECTION("transparency: leading dot removed, then re-stuffed") {
            const auto d = run("..\r\n...x\r\n.y\r\n.\r\n", policy);
            REQUIRE(d.out == "..\r\n...x\r\ny\r\n");
            REQUIRE(d.size == 1 + 2 + 3 + 2 + 1 + 2);
        }
        SECTION("a partial line is flushed on every feed") {
            DataDecoder decoder(policy);
            std::string out;
            REQUIRE_FALSE(decoder.feed("abc", out).finished);
            REQUIRE(out == "abc");
            REQUIRE_FALSE(decoder.feed("def\r", out).finished);
            REQUIRE(out == "abcdef");
            REQUIRE(decoder.longest_line() == 6);
            REQUIRE_FALSE(decoder.feed("\n.", out).finished);
            REQUIRE(out == "abcdef\r\n");
            const auto r = decoder.feed("\r\nNOOP\r\n", out);
            REQUIRE(r.finished);
            REQUIRE(r.consumed == 2);
            REQUIRE(out == "abcdef\r\n");
            REQUIRE(decoder.feed("more", out).consumed == 0);
        }
    }
}

TEST_CASE("proper end of data stops before pipelined commands", "[smtp][data]") {
    const std::string message = "line one\r\n.line two\r\n";
    const std::string rest = "MAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\n";
    for (const auto policy : kPolicies) {
        const auto d = run(message + ".\r\n" + rest, policy);
        REQUIRE(d.finished);
        REQUIRE(d.consumed == message.size() + 3);
        REQUIRE(d.out == "line one\r\nline two\r\n");
        REQUIRE_FALSE(d.bare_seen);
    }
}

TEST_CASE("SMTP smuggling variants never end data", "[smtp][data]") {
    const char* const variants[] = {"\n.\n", "\r.\r", "\n.\r\n", "\r\n.\n", "\r.\r\n", "\r\n.\r"};
    for (const char* variant : variants) {
        const std::string input =
            std::string("Subject: x\r\n\r\nbody") + variant + "MAIL FROM:<x>\r\n";
        for (const auto policy : kPolicies) {
            CAPTURE(variant, policy == BarePolicy::reject);
            const auto d = run(input, policy);
            REQUIRE_FALSE(d.finished);
            REQUIRE(d.consumed == input.size());
            REQUIRE(d.bare_seen);
            if (policy == BarePolicy::normalize) {
                REQUIRE(model::safe_output(d.out));
            }
        }
    }
}

TEST_CASE("bare line endings under normalize", "[smtp][data]") {
    SECTION("bare LF and bare CR become CRLF; CR CR LF is two breaks") {
        const auto d = run("a\nb\rc\r\r\nd\r\n.\r\n", BarePolicy::normalize);
        REQUIRE(d.finished);
        REQUIRE(d.out == "a\r\nb\r\nc\r\n\r\nd\r\n");
        REQUIRE(d.size == 14);
        REQUIRE(d.bare_seen);
    }
    SECTION("a lone dot ended by a bare ending stays content, re-stuffed") {
        const auto d = run("x\n.\ny\r\n.\r\n", BarePolicy::normalize);
        REQUIRE(d.finished);
        REQUIRE(d.out == "x\r\n..\r\ny\r\n");
        REQUIRE(d.size == 3 + 3 + 3);
    }
    SECTION("a lone dot ended by a bare CR stays content, re-stuffed") {
        const auto d = run("x\r\n.\ry\r\n.\r\n", BarePolicy::normalize);
        REQUIRE(d.finished);
        REQUIRE(d.out == "x\r\n..\r\ny\r\n");
    }
    SECTION("a dot line after a bare ending is not the end, even with CRLF") {
        const auto d = run("x\n.\r\nafter\r\n.\r\n", BarePolicy::normalize);
        REQUIRE(d.finished);
        REQUIRE(d.out == "x\r\n..\r\nafter\r\n");
    }
}

TEST_CASE("bare line endings under reject are content", "[smtp][data]") {
    const auto d = run("a\nb\rc\r\n.\n\r\n.\r\nQUIT\r\n", BarePolicy::reject);
    REQUIRE(d.bare_seen);
    REQUIRE(d.finished);
    REQUIRE(d.out == "a\nb\rc\r\n\n\r\n");
    REQUIRE(d.size == 5 + 2 + 1 + 2);
    REQUIRE(d.longest == 5);
}

TEST_CASE("long lines stream with bounded buffering", "[smtp][data]") {
    DataDecoder decoder(BarePolicy::reject);
    const std::string chunk(4096, 'x');
    std::string out;
    for (int i = 0; i < 256; ++i) {
        out.clear();
        REQUIRE(decoder.feed(chunk, out).consumed == chunk.size());
        REQUIRE(out == chunk);
    }
    REQUIRE(decoder.longest_line() == 4096u * 256u);
    out.clear();
    REQUIRE(decoder.feed("\r\n.\r\n", out).finished);
    REQUIRE(out == "\r\n");
}

TEST_CASE("property: round trip of encoded lines", "[smtp][data][property]") {
    RandomInput random(20240601);
    for (int i = 0; i < 3000; ++i) {
        const auto lines = random.lines(6);
        const std::string encoded = encode_all(lines);
        const std::string input = encoded + ".\r\nMAIL FROM:<x>\r\n";
        for (const auto policy : kPolicies) {
            const auto d =
                run(input, policy, random.cuts(input.size()), static_cast<Caller>(i % 3));
            REQUIRE(d.finished);
            REQUIRE(d.consumed == encoded.size() + 3);
            REQUIRE(d.out == encoded);
            REQUIRE_FALSE(d.bare_seen);
            std::uint64_t size = 0;
            for (const auto& l : lines) {
                size += l.size() + 2;
            }
            REQUIRE(d.size == size);
        }
    }
}

TEST_CASE("property: random streams, any split, match the model", "[smtp][data][property]") {
    RandomInput random(1234567);
    for (int i = 0; i < 20000; ++i) {
        const std::string input = random.bytes(40);
        for (const auto policy : kPolicies) {
            CAPTURE(input, policy == BarePolicy::reject);
            const auto whole = run(input, policy);
            require_same(whole, model::decode(input, policy));
            const auto cuts = random.cuts(input.size());
            require_same(run(input, policy, cuts), whole);
            require_same(run(input, policy, cuts, Caller::pass_then_feed), whole);
            require_same(run(input, policy, cuts, Caller::session), whole);

            // (b) the only end is right after the first CRLF "." CRLF (or ".\r\n" first).
            const auto end = model::expected_end(input);
            REQUIRE(whole.finished == (end != std::string::npos));
            REQUIRE(whole.consumed == (whole.finished ? end : input.size()));
            const auto scanned = std::string_view(input).substr(0, whole.consumed);
            const bool bare = model::has_bare(scanned, whole.finished);
            if (policy == BarePolicy::normalize) {
                // (c) nothing the backend could take for a line ending or end of data.
                REQUIRE(model::safe_output(whole.out));
            }
            // (d) a bare CR/LF before the end is always flagged, and only then.
            REQUIRE(whole.bare_seen == bare);
        }
    }
}

TEST_CASE("property: long mostly plain streams, any split, match the model",
          "[smtp][data][property]") {
    // The fast path takes whole 64-byte blocks of plain lines; the special bytes land at
    // every position of a block, and at its edges, over the runs.
    RandomInput random(7654321);
    for (int i = 0; i < 4000; ++i) {
        const std::string input = random.plain_text(700);
        for (const auto policy : kPolicies) {
            CAPTURE(input, policy == BarePolicy::reject);
            const auto whole = run(input, policy);
            require_same(whole, model::decode(input, policy));
            const auto cuts = random.cuts(input.size());
            require_same(run(input, policy, cuts), whole);
            require_same(run(input, policy, cuts, Caller::pass_then_feed), whole);
            require_same(run(input, policy, cuts, Caller::session), whole);
        }
    }
}

TEST_CASE("pass_plain_lines takes only whole lines that encode to themselves", "[smtp][data]") {
    DataDecoder decoder(BarePolicy::reject);
    // plain and empty lines and a client-stuffed "..x" pass; ".y" (its dot is dropped) stops it
    const std::string_view in = "abc\r\n..x\r\n\r\n.y\r\nzz\r\n";
    REQUIRE(decoder.pass_plain_lines(in) == 12);
    REQUIRE(decoder.message_size() == 11);  // "abc", "..x" decodes to ".x", ""
    REQUIRE(decoder.longest_line() == 3);
    std::string out;
    const auto r = decoder.feed(in.substr(12), out);
    REQUIRE(out == "y\r\nzz\r\n");
    REQUIRE(r.consumed == in.size() - 12);
    // an unfinished line is left to feed(), and so is the middle of a line
    DataDecoder partial(BarePolicy::reject);
    REQUIRE(partial.pass_plain_lines("abc\r\nde") == 5);
    REQUIRE(partial.pass_plain_lines("de") == 0);
    out.clear();
    partial.feed("de", out);
    REQUIRE(partial.pass_plain_lines("f\r\n") == 0);  // mid-line
    // neither a bare LF nor the end of data is passed
    DataDecoder bare(BarePolicy::normalize);
    REQUIRE(bare.pass_plain_lines("a\nb\r\n") == 0);
    REQUIRE(bare.pass_plain_lines("\r\n\rb\r\n") == 2);  // the empty line, not the bare CR
    DataDecoder end(BarePolicy::reject);
    REQUIRE(end.pass_plain_lines("a\r\n.\r\nQUIT\r\n") == 3);
    REQUIRE(end.feed(".\r\nQUIT\r\n", out).finished);
    REQUIRE(end.pass_plain_lines("QUIT\r\n") == 0);  // after the end, nothing
}

TEST_CASE("property: one special byte sequence at every offset of a long plain stream",
          "[smtp][data][property]") {
    // Whole 64-byte blocks of plain lines take a vectorised path: a bare CR or LF, a
    // line starting with a dot, an empty line or the end marker must be found wherever
    // it sits in a block or across the edge of two, with the counts unchanged.
    std::string plain;
    for (int i = 0; plain.size() < 400; ++i) {
        plain += std::string(static_cast<std::size_t>(i * 7 % 90), static_cast<char>('a' + i % 26));
        plain += "\r\n";
    }
    static constexpr std::string_view kSpecial[] = {"\r",    "\n",        ".",  "\r\n.", "\r\n\r\n",
                                                    ".\r\n", "\r\n.\r\n", "..", "\n.",   "\r\r\n"};
    for (const auto special : kSpecial) {
        for (std::size_t at = 0; at <= plain.size(); ++at) {
            std::string input = plain;
            input.insert(at, special);
            for (const auto policy : kPolicies) {
                CAPTURE(special, at, policy == BarePolicy::reject);
                const auto whole = run(input, policy);
                require_same(whole, model::decode(input, policy));
                require_same(run(input, policy, {}, Caller::pass_then_feed), whole);
            }
        }
    }
}

TEST_CASE("ready_for_decoding holds back only a short unfinished last line", "[smtp][data]") {
    using portcullis::smtp::kHeldLineMax;
    using portcullis::smtp::ready_for_decoding;
    REQUIRE(ready_for_decoding("abc\r\nde") == 5);
    REQUIRE(ready_for_decoding("abc\r\n") == 5);
    REQUIRE(ready_for_decoding("abc") == 0);
    REQUIRE(ready_for_decoding("") == 0);
    // a CR may be half of a line break or of the end marker: decoded now
    REQUIRE(ready_for_decoding("abc\r\nde\r") == 8);
    REQUIRE(ready_for_decoding("x\r\n.\r") == 5);
    // a bare LF ends what is held (the decoder judges it)
    REQUIRE(ready_for_decoding("a\nb") == 2);
    // a long unfinished line streams on: memory stays bounded
    const std::string long_line(kHeldLineMax, 'x');
    REQUIRE(ready_for_decoding(long_line) == kHeldLineMax);
    REQUIRE(ready_for_decoding("a\r\n" + long_line) == kHeldLineMax + 3);
    REQUIRE(ready_for_decoding("a\r\n" + long_line.substr(1)) == 3);
}
