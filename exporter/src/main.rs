fn main() {
    std::process::exit(chainwatch_exporter::cli::main());
}
