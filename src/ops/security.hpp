// Process hardening: refusing secrets that other users can read, and dropping root.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"

namespace portcullis::ops {

// Problems with the files that hold secrets (TLS private keys, the users file): each
// one names the file, what is wrong and the command that fixes it. Empty when fine.
std::vector<std::string> secret_file_problems(const config::Config& cfg);

// Switches the whole process to `user` (its uid, primary gid and supplementary
// groups). Throws std::runtime_error saying why it could not.
void drop_privileges(const std::string& user);

}  // namespace portcullis::ops
