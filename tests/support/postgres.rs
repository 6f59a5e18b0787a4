//! A real PostgreSQL server on 127.0.0.1 for `drill --dsn`, set up as RDS sets one up: TLS
//! on with a certificate from a CA of the test's own that no system store trusts (RDS's
//! chain to the RDS CA), plain connections rejected (`rds.force_ssl`, the default from
//! PostgreSQL 15), SCRAM passwords. The certificate names `db.test.internal` only, not the
//! address the test connects to, as a database's certificate does not name the PrivateLink
//! endpoint a consumer connects through.
//!
//! From Debian's postgresql-15 package and the openssl tool, installed on first use. As
//! root (CI) the server runs as the package's `postgres` user: PostgreSQL refuses root.

use std::fs;
use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::apt::Package;

pub const USER: &str = "pglink";
pub const PASSWORD: &str = "drill-secret";
/// The only name in the server's certificate.
pub const CERT_NAME: &str = "db.test.internal";

const POSTGRES: Package = Package {
    program: "postgres",
    dir: "/usr/lib/postgresql/15/bin",
    name: "postgresql-15",
    flags: &["--no-install-recommends"],
    units: &["postgresql.service", "postgresql@15-main.service"],
};

const OPENSSL: Package = Package {
    program: "openssl",
    dir: "/usr/bin",
    name: "openssl",
    flags: &[],
    units: &[],
};

pub struct Postgres {
    pub port: u16,
    /// The CA that signed the server's certificate (PEM).
    pub ca: PathBuf,
    /// A CA that did not (PEM), for the negative case.
    pub other_ca: PathBuf,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Postgres {
    /// Starts a server and waits until it accepts connections.
    pub fn start() -> Self {
        let postgres = fs::canonicalize(POSTGRES.ensure()).expect("postgres path");
        let bin = postgres
            .parent()
            .expect("postgres's directory")
            .to_path_buf();
        let openssl = OPENSSL.ensure();
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        let ca = make_ca(&openssl, root, "ca");
        let other_ca = make_ca(&openssl, root, "other-ca");
        make_server_cert(&openssl, root);
        fs::write(root.join("pw"), PASSWORD).unwrap();
        let data = root.join("data");
        let owner = DbUser::for_this_process();
        owner.give(root);
        let init = owner
            .command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=scram-sha-256",
                "--no-sync",
                "-E",
                "UTF8",
            ])
            .arg(format!("--pwfile={}", root.join("pw").display()))
            .output()
            .expect("run initdb");
        assert!(
            init.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&init.stderr)
        );
        fs::write(
            data.join("pg_hba.conf"),
            "local all all scram-sha-256\n\
             hostssl all all 127.0.0.1/32 scram-sha-256\n\
             hostnossl all all 127.0.0.1/32 reject\n",
        )
        .unwrap();
        owner.give(root);
        let log = root.join("postgres.log");
        for _ in 0..5 {
            let port = super::free_port();
            let mut child = owner
                .command(&postgres)
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string(), "-k"])
                .arg(root)
                .args([
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    "ssl=on",
                    "-c",
                    "fsync=off",
                ])
                .arg("-c")
                .arg(format!(
                    "ssl_cert_file={}",
                    root.join("server.crt").display()
                ))
                .arg("-c")
                .arg(format!(
                    "ssl_key_file={}",
                    root.join("server.key").display()
                ))
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("start postgres");
            if wait_ready(&mut child, &log, port) {
                return Self {
                    port,
                    ca: ca.clone(),
                    other_ca: other_ca.clone(),
                    child,
                    log: log.clone(),
                    _dir: dir,
                };
            }
        }
        panic!("postgres did not start:\n{}", read(&log));
    }
}

/// True once the server logs that it is ready and its port answers; false if it exited (a
/// port taken meanwhile).
fn wait_ready(child: &mut Child, log: &Path, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return false;
        }
        let ready = read(log).contains("ready to accept connections");
        if ready && TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("postgres not ready after 60 s:\n{}", read(log));
}

impl Postgres {
    /// What the server logged (for failure messages).
    pub fn log(&self) -> String {
        read(&self.log)
    }

    /// A keyword connection string to this server as `USER`, without the password.
    pub fn dsn(&self, extra: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres {extra}",
            self.port
        )
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGTERM: a smart shutdown would wait for clients; the backends exit with the
        // postmaster either way.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn read(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

fn openssl(openssl: &Path, args: &[&str], dir: &Path) {
    let out = Command::new(openssl)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A self-signed CA (`NAME.pem`, `NAME.key`).
fn make_ca(tool: &Path, dir: &Path, name: &str) -> PathBuf {
    let (cert, key) = (format!("{name}.pem"), format!("{name}.key"));
    openssl(
        tool,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            &format!("/CN=pglink test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ],
        dir,
    );
    dir.join(cert)
}

/// `server.crt`/`server.key`, signed by `ca`, naming only `CERT_NAME`.
fn make_server_cert(tool: &Path, dir: &Path) {
    openssl(
        tool,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &format!("/CN={CERT_NAME}"),
        ],
        dir,
    );
    fs::write(
        dir.join("server.ext"),
        format!(
            "subjectAltName=DNS:{CERT_NAME}\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n"
        ),
    )
    .unwrap();
    openssl(
        tool,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        dir,
    );
}

/// Who runs the server: this process, or `postgres` when this process is root.
enum DbUser {
    Me,
    Postgres { uid: u32, gid: u32 },
}

impl DbUser {
    fn for_this_process() -> Self {
        let id = |args: &[&str]| -> u32 {
            let out = Command::new("id").args(args).output().expect("run id");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("id {args:?}: {out:?}"))
        };
        if id(&["-u"]) != 0 {
            return Self::Me;
        }
        Self::Postgres {
            uid: id(&["-u", "postgres"]),
            gid: id(&["-g", "postgres"]),
        }
    }

    /// Hands the tree to the server's user, the key readable by it alone.
    fn give(&self, root: &Path) {
        if let Self::Postgres { uid, gid } = self {
            let out = Command::new("chown")
                .arg("-R")
                .arg(format!("{uid}:{gid}"))
                .arg(root)
                .output()
                .expect("run chown");
            assert!(out.status.success(), "chown: {out:?}");
        }
        use std::os::unix::fs::PermissionsExt;
        let key = root.join("server.key");
        if key.exists() {
            fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        }
    }

    fn command(&self, program: &Path) -> Command {
        match self {
            Self::Me => Command::new(program),
            Self::Postgres { .. } => {
                let mut cmd = Command::new("runuser");
                cmd.args(["-u", "postgres", "--"]).arg(program);
                cmd
            }
        }
    }
}
