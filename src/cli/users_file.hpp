// cli/: text-preserving edits of the users file for the `portcullis user …` commands.
//
// toml++ cannot write comments back, so edits work on the text: the file is parsed
// (auth::parse_users for meaning, toml::parse for source positions) and only the lines
// that belong to the edited user change; comments, blank lines, other users and the
// line endings stay byte-for-byte. Every edited text is parsed again and compared with
// the original before it is returned: an edit that would break the file or touch any
// other user is refused.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace portcullis::cli {

// A refused edit or a failed file operation. The message names the file (and the line
// when there is one): "FILE:LINE: cause" or "FILE: cause".
class UsersFileError : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

struct UserEntry {
    std::string name;
    bool disabled = false;
    std::vector<std::string> senders;  // empty = only its own name
};

// Every user in `text`, sorted by name. Throws config::ConfigError when the text is not
// a valid users file.
std::vector<UserEntry> list_users(std::string_view text, const std::filesystem::path& file);

// Throws UsersFileError naming the existing definition when `name` is already a user.
void require_absent(std::string_view text, const std::filesystem::path& file,
                    std::string_view name);
// Throws UsersFileError when `name` is not a user, or is defined in a form these edits
// cannot change safely (inline table, dotted keys, no [users."NAME"] table of its own).
void require_editable(std::string_view text, const std::filesystem::path& file,
                      std::string_view name);

// Each returns the whole new text. Throws config::ConfigError when `text` is not a valid
// users file and UsersFileError when the edit is refused.
//
// Appends a [users."NAME"] table (password, senders when given) at the end, after a
// blank line.
std::string add_user(std::string_view text, const std::filesystem::path& file,
                     std::string_view name, std::string_view password_hash,
                     std::span<const std::string> senders);
// Replaces only the password value; the rest of its line (a trailing comment) stays.
std::string set_password(std::string_view text, const std::filesystem::path& file,
                         std::string_view name, std::string_view password_hash);
// Removes the user's table (and any [users."NAME".…] sub-tables): from the header line
// up to the next header, keeping the comment lines directly above that next header.
std::string delete_user(std::string_view text, const std::filesystem::path& file,
                        std::string_view name);

enum class EditKind { add, set_password, remove };

// The guard every edit passes: `after` must be a valid users file in which no user but
// `name` differs from `before`, and `name` must have been added (with `password_hash`
// and `senders`), have the new `password_hash`, or be gone. Throws UsersFileError.
void verify_edit(std::string_view before, std::string_view after, const std::filesystem::path& file,
                 EditKind kind, std::string_view name, std::string_view password_hash = {},
                 std::span<const std::string> senders = {});

// `s` as a TOML basic string, quotes included, with `"`, `\` and control characters
// escaped. `s` must be valid UTF-8 (UsersFileError otherwise).
std::string toml_basic_string(std::string_view s);

bool valid_utf8(std::string_view s);

// The whole file, or nullopt when it does not exist. Throws UsersFileError otherwise.
std::optional<std::string> read_text_file(const std::filesystem::path& file);

// Replaces `file` atomically: a temporary file in the same folder (created exclusively,
// with the mode and owner of the existing file, or 0600 for a new one), written, synced,
// renamed over `file`, then the folder synced. A symbolic link is followed, so the link
// stays and its target is replaced. On error the temporary file is removed and
// UsersFileError names the path and the system's reason.
void atomic_write(const std::filesystem::path& file, std::string_view text);

// An exclusive flock on the sibling "<file>.lock", held for a read-modify-write of
// `file`. Waits up to `timeout` for another holder, then throws UsersFileError.
class FileLock {
  public:
    explicit FileLock(const std::filesystem::path& file,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));
    ~FileLock();
    FileLock(const FileLock&) = delete;
    FileLock& operator=(const FileLock&) = delete;

    const std::filesystem::path& path() const { return path_; }

  private:
    std::filesystem::path path_;
    int fd_ = -1;
};

}  // namespace portcullis::cli
