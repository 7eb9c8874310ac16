// portcullis: command-line entry point. Each subcommand lives in cli/ or ops/.
int main() { return 0; }
