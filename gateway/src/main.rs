//! linktoken-gateway: placeholder until the gateway issue lands.
fn main() {
    eprintln!("linktoken-gateway is not implemented yet");
    std::process::exit(2);
}
