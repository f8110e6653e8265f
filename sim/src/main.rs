fn main() {
    std::process::exit(chainwatch_sim::main());
}
