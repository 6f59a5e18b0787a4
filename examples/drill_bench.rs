//! `pglink drill` on the emulator, as a user runs it on their own stack: a Multi-AZ
//! instance is failed over with `--yes`, and the drill's table says how long each step
//! took after the API call. In this world RDS repoints the name 3 s after the call and the
//! NLB's registration takes 2 s (the strict proxy's model); on AWS those parts are RDS's
//! 60-120 s and the NLB's minutes, which is why the figure is worth measuring there. The
//! consumer's path is a TCP probe and a `SELECT 1` (`--dsn`) against a real PostgreSQL with
//! TLS forced, as RDS has it.
//!
//!     cargo build && cargo run --example drill_bench -- [RUNS=3]

#[path = "../tests/support/mod.rs"]
mod support;

use support::fixture;

#[tokio::main]
async fn main() {
    for (k, v) in fixture::AWS_ENV {
        std::env::set_var(k, v);
    }
    let runs: usize = support::arg(1, 3);
    let bin = support::pglink_binary();
    let pg = support::postgres::Postgres::start();
    let dsn = pg.dsn(&format!(
        "sslmode=verify-ca sslrootcert={}",
        pg.ca.display()
    ));
    for run in 1..=runs {
        let d = support::drill::drill_world(bin.to_str().unwrap()).await;
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let probe = probe.local_addr().unwrap().to_string();
        let out = d.run_env(
            &[
                "--target",
                "analytics",
                "--yes",
                "--timeout",
                "120s",
                "--probe",
                &probe,
                "--dsn",
                &dsn,
            ],
            &[("PGPASSWORD", support::postgres::PASSWORD)],
        );
        println!(
            "run {run} of {runs} ({} build), exit {:?}\n{}",
            support::build_profile(),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
