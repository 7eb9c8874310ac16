// LoopSigner: signatures made on the pool come back on the loop that asked.
#include <catch2/catch.hpp>
#include <openssl/ec_key.h>
#include <openssl/nid.h>
#include <openssl/ssl.h>
#include <uv.h>

#include <thread>

#include "proxy/loop_signer.hpp"
#include "util/work_pool.hpp"
#include "../util/gate.hpp"

using namespace portcullis;
using portcullis::testing::Gate;

namespace {

tls::SignatureRequest ec_request() {
    bssl::UniquePtr<EC_KEY> ec(EC_KEY_new_by_curve_name(NID_X9_62_prime256v1));
    REQUIRE(EC_KEY_generate_key(ec.get()) == 1);
    bssl::UniquePtr<EVP_PKEY> key(EVP_PKEY_new());
    REQUIRE(EVP_PKEY_assign_EC_KEY(key.get(), ec.release()) == 1);
    return {std::move(key), SSL_SIGN_ECDSA_SECP256R1_SHA256, std::vector<std::uint8_t>(64, 7)};
}

}  // namespace

TEST_CASE("a signature made on the pool is delivered on the loop's thread", "[proxy][signing]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    util::WorkPool pool(2, 0);
    {
        proxy::LoopSigner signer(&loop, pool, 16);
        int delivered = 0;
        std::thread::id where;
        for (int i = 0; i < 3; ++i) {
            signer.start(ec_request(), [&](std::vector<std::uint8_t> signature) {
                CHECK(signature.size() > 60);  // a DER ECDSA P-256 signature: 70-72 bytes
                where = std::this_thread::get_id();
                ++delivered;
            });
        }
        CHECK(delivered == 0);  // never inside start()
        while (delivered < 3) {
            uv_run(&loop, UV_RUN_ONCE);
        }
        CHECK(where == std::this_thread::get_id());
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("a full pool: the loop signs itself, delivered on a later turn", "[proxy][signing]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Gate gate;
    util::WorkPool pool(1, 0);
    {
        REQUIRE(pool.submit([&] { gate.wait(); }, 8));  // holds the only thread
        proxy::LoopSigner signer(&loop, pool, 1);       // and the one place
        bool delivered = false;
        signer.start(ec_request(), [&](std::vector<std::uint8_t> signature) {
            CHECK_FALSE(signature.empty());
            delivered = true;
        });
        CHECK_FALSE(delivered);
        uv_run(&loop, UV_RUN_NOWAIT);
        CHECK(delivered);  // the pool's thread is still held
        gate.open();
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
}

TEST_CASE("signatures still on their way when the signer goes are dropped", "[proxy][signing]") {
    uv_loop_t loop;
    uv_loop_init(&loop);
    Gate gate;
    bool delivered = false;
    {
        util::WorkPool pool(1, 0);
        {
            proxy::LoopSigner signer(&loop, pool, 8);
            REQUIRE(pool.submit([&] { gate.wait(); }, 8));
            signer.start(ec_request(), [&](std::vector<std::uint8_t>) { delivered = true; });
        }  // the loop's signer is gone first (as at a worker's shutdown) ...
        gate.open();
    }  // ... then the pool runs the signature and finds no one to give it to
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK_FALSE(delivered);
    CHECK(uv_loop_close(&loop) == 0);
}
