#include "ops/security.hpp"

#include <fmt/format.h>
#include <grp.h>
#include <pwd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace portcullis::ops {
namespace {

void check_private_file(const std::filesystem::path& path, std::string_view what,
                        std::vector<std::string>& problems) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        return;  // a missing file is reported by whoever reads it, with its own message
    }
    const unsigned mode = st.st_mode & 07777;
    if ((mode & (S_IROTH | S_IWOTH)) != 0) {
        problems.push_back(fmt::format(
            "{}: {} is {} by other users (mode {:04o}); fix: chmod 600 {} (or chmod 640 and "
            "chgrp it to the gateway's group)",
            path.string(), what, (mode & S_IROTH) != 0 ? "readable" : "writable", mode,
            path.string()));
    } else if ((mode & S_IWGRP) != 0) {
        problems.push_back(
            fmt::format("{}: {} is writable by its group (mode {:04o}); fix: chmod "
                        "g-w {}",
                        path.string(), what, mode, path.string()));
    }
}

}  // namespace

std::vector<std::string> secret_file_problems(const config::Config& cfg) {
    std::vector<std::string> problems;
    for (const auto& pair : cfg.tls.certificates) {
        check_private_file(pair.private_key, "the TLS private key", problems);
    }
    check_private_file(cfg.auth.users_file, "the users file (password hashes)", problems);
    if (!cfg.state.password_file.empty()) {
        check_private_file(cfg.state.password_file, "the Redis password file ([state])", problems);
    }
    return problems;
}

void drop_privileges(const std::string& user) {
    std::vector<char> buffer(16384);
    passwd pw{};
    passwd* found = nullptr;
    const int rc = ::getpwnam_r(user.c_str(), &pw, buffer.data(), buffer.size(), &found);
    if (rc != 0 || found == nullptr) {
        throw std::runtime_error(fmt::format("[server] user = \"{}\": no such user{}", user,
                                             rc != 0 ? std::string(": ") + std::strerror(rc) : ""));
    }
    if (::geteuid() != 0) {
        if (::geteuid() == pw.pw_uid) {
            return;  // already that user
        }
        throw std::runtime_error(
            fmt::format("[server] user = \"{}\": cannot switch users without root", user));
    }
    if (::initgroups(pw.pw_name, pw.pw_gid) != 0 || ::setgid(pw.pw_gid) != 0 ||
        ::setuid(pw.pw_uid) != 0) {
        throw std::runtime_error(
            fmt::format("[server] user = \"{}\": cannot switch: {}", user, std::strerror(errno)));
    }
    if (::setuid(0) == 0) {
        throw std::runtime_error(
            fmt::format("[server] user = \"{}\": root could be regained", user));
    }
    ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
}

}  // namespace portcullis::ops
