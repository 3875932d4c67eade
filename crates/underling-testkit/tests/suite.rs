//! The behaviour suite on SQLite (in memory) and PostgreSQL (a fresh schema per behaviour):
//! one trial per backend and behaviour, named `backend::module::behaviour`.

fn main() {
    let args = libtest_mimic::Arguments::from_args();
    let factories = [
        underling_testkit::Factory::sqlite(),
        underling_testkit::Factory::postgres(),
    ];
    libtest_mimic::run(&args, underling_testkit::trials(&factories)).exit();
}
