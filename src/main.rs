//! The `pglink` command line: parse, load config, dispatch. Nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use pglink::commands::{self, Exit};
use pglink::config::{LogFormat, CONFIG_ENV};

#[derive(Parser, Debug)]
#[command(
    name = "pglink",
    version = concat!(env!("CARGO_PKG_VERSION"), " (", env!("PGLINK_REVISION"), ")"),
    about = "Keeps a Postgres database reachable over AWS PrivateLink"
)]
struct Cli {
    /// Log format; overrides [log] format.
    #[arg(long, global = true, value_enum)]
    log_format: Option<LogFormatArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormatArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum OutputArg {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum PolicyRole {
    Daemon,
    Bootstrap,
    Drill,
}

#[derive(clap::Args, Debug)]
struct ConfigArg {
    /// Configuration file (TOML).
    #[arg(short, long, env = CONFIG_ENV, value_name = "FILE")]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the daemon: keep every target group in sync until SIGTERM/SIGINT.
    Run {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// One reconcile pass over every target, then exit (0 converged, 1 a target failed).
    Sync {
        #[command(flatten)]
        config: ConfigArg,
        /// Log the changes instead of making them.
        #[arg(long)]
        dry_run: bool,
    },
    /// Show, per target, the resolved addresses, the registered targets and the changes a
    /// sync would make. Changes nothing; exits 1 when a target could not be read.
    Plan {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum, default_value = "text")]
        output: OutputArg,
        /// Exit 3 when every target was read and some have changes pending (0: in sync).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Create or repair the PrivateLink stack ([bootstrap]); print the endpoint service name
    /// and the support request to send.
    Bootstrap {
        #[command(flatten)]
        config: ConfigArg,
        /// Show what would be created or repaired; change nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: OutputArg,
        /// With --dry-run: exit 3 when the stack needs changes (0: it is in place).
        #[arg(long)]
        detailed_exitcode: bool,
    },
    /// Delete what bootstrap created (found by pglink's tags), nothing else.
    Teardown {
        #[command(flatten)]
        config: ConfigArg,
        /// Delete for real; without it, only list what would be deleted.
        #[arg(long)]
        yes: bool,
        /// Reject the consumers' live endpoint connections first (their endpoints stop
        /// working); without it, live connections stop the teardown before any deletion.
        #[arg(long)]
        reject_connections: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: OutputArg,
    },
    /// Accept pending endpoint connections from the allowed principals' accounts.
    Accept {
        #[command(flatten)]
        config: ConfigArg,
        #[arg(long, value_enum, default_value = "text")]
        output: OutputArg,
    },
    /// Validate the configuration and print the effective settings.
    CheckConfig {
        #[command(flatten)]
        config: ConfigArg,
    },
    /// Print the least-privilege IAM policy for this configuration (JSON).
    IamPolicy {
        #[command(flatten)]
        config: ConfigArg,
        /// Whose policy: `daemon` (run, sync, plan), `bootstrap` (bootstrap, teardown,
        /// accept) or `drill` (drill: the daemon's for the targets it can fail over, plus
        /// the failover call on those databases and RDS's events).
        #[arg(long, value_enum)]
        role: PolicyRole,
        /// With `--role daemon` or `drill`: the policy of this role (a target's `role_arn`)
        /// instead of the caller's own.
        #[arg(long, value_name = "ARN")]
        role_arn: Option<String>,
        /// With `--role bootstrap`: the account the stack is in (default: any, `*`).
        #[arg(long, value_name = "ID")]
        account: Option<String>,
    },
    /// Probe a running daemon's /healthz (for container HEALTHCHECKs): exit 0 if healthy.
    Healthcheck {
        #[arg(
            long,
            env = "PGLINK_HEALTHCHECK_URL",
            default_value = "http://127.0.0.1:9187/healthz"
        )]
        url: String,
    },
    /// Fail a target's database over on purpose and time each step of the recovery on your
    /// own stack; without --yes, only show what it would do.
    Drill {
        #[command(flatten)]
        config: ConfigArg,
        /// The [[targets]] name whose database to fail over (db_instance, or db_cluster
        /// followed by its writer).
        #[arg(long, value_name = "NAME")]
        target: String,
        /// Fail the database over for real (RebootDBInstance with ForceFailover, or
        /// FailoverDBCluster): the database is unavailable while RDS fails over.
        #[arg(long)]
        yes: bool,
        /// How long to wait for every step.
        #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
        /// HOST:PORT to connect to through the consumer's path (the endpoint or the NLB);
        /// its first successful connect after the DNS change is a step.
        #[arg(long, value_name = "HOST:PORT")]
        probe: Option<String>,
        /// A libpq connection string (`host=... user=... sslmode=verify-ca
        /// sslrootcert=global-bundle.pem`, or a postgresql:// URL) for SELECT 1 through the
        /// consumer's path; its first answer after the DNS change is a step. The password
        /// is best given as PGPASSWORD (libpq's PG* variables fill what the string omits).
        #[arg(long, value_name = "CONNINFO")]
        dsn: Option<String>,
        /// Only watch: a running daemon keeps the group (default: drill syncs the target
        /// itself, with the daemon's rules).
        #[arg(long)]
        watch: bool,
        #[arg(long, value_enum, default_value = "text")]
        output: OutputArg,
    },
    /// Print a shell completion script to stdout (`pglink completions bash >
    /// /etc/bash_completion.d/pglink`).
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout: `pglink man > pglink.1`; `pglink man bootstrap`
    /// prints the page of one command.
    Man {
        /// The command whose page to print (default: pglink's own page).
        command: Option<String>,
    },
}

/// Renders pglink's man page, or one command's (`pglink-bootstrap`), to stdout.
fn man_page(command: Option<&str>) -> Exit {
    let mut cli = Cli::command();
    cli.build();
    let page = match command {
        None => cli,
        Some(name) => match cli.find_subcommand(name) {
            Some(sub) => sub
                .clone()
                .name(format!("pglink-{name}"))
                .bin_name(format!("pglink {name}")),
            None => {
                let known: Vec<&str> = cli.get_subcommands().map(|c| c.get_name()).collect();
                return Exit::BadInput(format!(
                    "man: no command {name:?}; expected one of: {}",
                    known.join(", ")
                ));
            }
        },
    };
    match clap_mangen::Man::new(page).render(&mut std::io::stdout()) {
        Ok(()) => Exit::Ok,
        // `pglink man | head` closed the pipe: nothing went wrong.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Exit::Ok,
        Err(e) => {
            eprintln!("error: man: cannot write the page: {e}");
            Exit::Failed
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log_format = cli.log_format.map(|f| match f {
        LogFormatArg::Text => LogFormat::Text,
        LogFormatArg::Json => LogFormat::Json,
    });
    let exit = match cli.command {
        Command::Run { config } => commands::run(config.config, log_format),
        Command::Sync { config, dry_run } => {
            commands::sync_once(config.config, log_format, dry_run)
        }
        Command::Plan {
            config,
            output,
            detailed_exitcode,
        } => commands::plan(
            config.config,
            log_format,
            output == OutputArg::Json,
            detailed_exitcode,
        ),
        Command::Bootstrap {
            config,
            dry_run,
            output,
            detailed_exitcode,
        } => commands::bootstrap(
            config.config,
            log_format,
            dry_run,
            output == OutputArg::Json,
            detailed_exitcode,
        ),
        Command::Teardown {
            config,
            yes,
            reject_connections,
            output,
        } => commands::teardown(
            config.config,
            log_format,
            yes,
            reject_connections,
            output == OutputArg::Json,
        ),
        Command::Accept { config, output } => {
            commands::accept(config.config, log_format, output == OutputArg::Json)
        }
        Command::CheckConfig { config } => commands::check_config(config.config),
        Command::IamPolicy {
            config,
            role,
            role_arn,
            account,
        } => match (role, role_arn, account) {
            (PolicyRole::Daemon, role_arn, None) => {
                commands::iam_policy(config.config, role_arn, false)
            }
            (PolicyRole::Drill, role_arn, None) => {
                commands::iam_policy(config.config, role_arn, true)
            }
            (PolicyRole::Bootstrap, None, account) => {
                commands::bootstrap_policy(config.config, account)
            }
            (PolicyRole::Daemon | PolicyRole::Drill, _, Some(_)) => {
                Exit::BadInput("--account: only with --role bootstrap".into())
            }
            (PolicyRole::Bootstrap, Some(_), _) => {
                Exit::BadInput("--role-arn: only with --role daemon or drill".into())
            }
        },
        Command::Healthcheck { url } => commands::healthcheck(&url),
        Command::Drill {
            config,
            target,
            yes,
            timeout,
            probe,
            dsn,
            watch,
            output,
        } => commands::drill(
            config.config,
            log_format,
            commands::DrillArgs {
                target,
                yes,
                timeout,
                probe,
                dsn,
                watch,
                json: output == OutputArg::Json,
            },
        ),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "pglink", &mut std::io::stdout());
            Exit::Ok
        }
        Command::Man { command } => man_page(command.as_deref()),
    };
    match exit {
        Exit::Ok => ExitCode::SUCCESS,
        Exit::Failed => ExitCode::from(1),
        Exit::BadInput(message) => {
            eprintln!("error: {message}");
            ExitCode::from(2)
        }
        Exit::ChangesPending => ExitCode::from(3),
    }
}
