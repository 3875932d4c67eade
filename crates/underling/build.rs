// The migrations are embedded with `sqlx::migrate!`; without this, new migration files are not noticed.
fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
