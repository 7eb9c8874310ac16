// policy/: decisions about what an authenticated user may do.
// Sender rules: may `user` use `address` as its envelope sender?
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace portcullis::policy {

// Patterns: an exact address ("alice@example.com") or "*@domain" (any local part at
// exactly that domain). Comparison ignores ASCII case. With no patterns, a user may
// send only as its own login name, and only when that name is an address. The null
// sender ("") matches only the pattern "<>".
bool sender_allowed(std::string_view login, std::span<const std::string> patterns,
                    std::string_view address);

// The same address, ignoring ASCII case (header From against the envelope sender).
bool same_address(std::string_view a, std::string_view b);

// True when `pattern` is a well-formed pattern (for validating users files).
bool valid_sender_pattern(std::string_view pattern);

}  // namespace portcullis::policy
