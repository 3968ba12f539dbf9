fn main() {
    std::process::exit(supervisor::cli::main());
}
