// portcullis: command-line entry point. Each subcommand lives in cli/ or ops/.
// Exit codes: 0 success, 1 error (reported on stderr), 2 usage error.
#include <CLI/CLI.hpp>

#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "cli/user_import.hpp"
#include "cli/version.hpp"
#include "ops/server.hpp"

namespace {

using portcullis::cli::exit_error;
using portcullis::cli::exit_ok;
using portcullis::cli::exit_usage;

constexpr const char* kDefaultConfig = "conf/portcullis.toml";

CLI::Option* add_config_option(CLI::App* cmd, std::string& target) {
    return cmd->add_option("--config", target, "configuration file")->capture_default_str();
}

int run(int argc, char** argv) {
    CLI::App app{"Portcullis: an authenticating SMTP proxy gateway", "portcullis"};
    app.set_version_flag("--version", std::string("portcullis ") + PORTCULLIS_VERSION);
    app.require_subcommand(1);

    std::string config = kDefaultConfig;
    std::string name;
    std::vector<std::string> senders;
    bool password_stdin = false;

    auto* serve = app.add_subcommand("serve", "run the gateway");
    add_config_option(serve, config);

    auto* check = app.add_subcommand("check-config",
                                     "validate the configuration, users file and certificates");
    add_config_option(check, config);

    auto* user = app.add_subcommand("user", "manage the users file");
    user->require_subcommand(1);

    auto* user_add = user->add_subcommand("add", "add a user");
    user_add->add_option("NAME", name, "login name, usually an address")->required();
    user_add
        ->add_option("--sender", senders,
                     "envelope sender the user may use: an address or *@domain (repeatable)")
        ->allow_extra_args(false);
    user_add->add_flag("--password-stdin", password_stdin,
                       "read the password from one line of standard input");
    add_config_option(user_add, config);

    auto* user_passwd = user->add_subcommand("passwd", "change a user's password");
    user_passwd->add_option("NAME", name, "login name")->required();
    user_passwd->add_flag("--password-stdin", password_stdin,
                          "read the password from one line of standard input");
    add_config_option(user_passwd, config);

    auto* user_del = user->add_subcommand("del", "delete a user");
    user_del->add_option("NAME", name, "login name")->required();
    add_config_option(user_del, config);

    auto* user_list = user->add_subcommand("list", "list users: name, state, senders");
    add_config_option(user_list, config);

    portcullis::cli::ImportOptions import_options;
    std::string import_source;
    auto* user_import = user->add_subcommand(
        "import", "import Argon2id users from a Dovecot passwd-file or an htpasswd file");
    user_import->add_option("FILE", import_source, "the file to import; - reads standard input")
        ->required();
    user_import->add_flag("--replace", import_options.replace,
                          "give existing users the imported hash (else they are an error)");
    user_import->add_flag("--dry-run", import_options.dry_run,
                          "report what would be imported; change nothing");
    user_import->add_flag("--skip-unsupported", import_options.skip_unsupported,
                          "leave out users whose hash is not Argon2id instead of failing");
    add_config_option(user_import, config);

    auto* hash = app.add_subcommand("hash", "print the Argon2id PHC string of a password");
    hash->add_flag("--password-stdin", password_stdin,
                   "read the password from one line of standard input");
    std::string hash_config;
    hash->add_option("--config", hash_config,
                     "take hashing cost and strength policy from this configuration file");

    auto* health =
        app.add_subcommand("healthcheck", "exit 0 when a listener answers 220 within 5 s");
    add_config_option(health, config);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? exit_ok : exit_usage;
    }

    portcullis::cli::Console io = portcullis::cli::standard_console(password_stdin);
    try {
        if (serve->parsed()) {
            return portcullis::ops::serve(config);
        }
        if (health->parsed()) {
            return portcullis::ops::healthcheck(config);
        }
        if (check->parsed()) {
            return portcullis::cli::run_check_config(config, io);
        }
        if (hash->parsed()) {
            return portcullis::cli::run_hash(
                hash_config.empty() ? std::nullopt
                                    : std::optional<std::filesystem::path>(hash_config),
                io);
        }
        if (user_add->parsed()) {
            return portcullis::cli::run_user_add(config, name, senders, io);
        }
        if (user_passwd->parsed()) {
            return portcullis::cli::run_user_passwd(config, name, io);
        }
        if (user_del->parsed()) {
            return portcullis::cli::run_user_del(config, name, io);
        }
        if (user_import->parsed()) {
            import_options.source = import_source;
            return portcullis::cli::run_user_import(config, import_options, io, std::cin);
        }
        if (user_list->parsed()) {
            return portcullis::cli::run_user_list(config, io);
        }
    } catch (const std::exception& e) {
        portcullis::cli::print_error(std::cerr, e);
        return exit_error;
    }
    std::cerr << app.help();
    return exit_usage;
}

}  // namespace

int main(int argc, char** argv) {
    return run(argc, argv);
}
