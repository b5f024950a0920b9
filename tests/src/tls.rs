//! Certificates for TLS tests, made with the `openssl` command line: a CA,
//! and a server certificate it signs for the names a test chooses.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether the `openssl` command is here.
///
/// # Panics
/// If `CI=true` and it is not: the TLS tests must run in CI.
pub fn openssl_available() -> bool {
    let found = Command::new("openssl")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but the openssl command is missing"
    );
    found
}

/// A certificate authority: `<dir>/<name>.crt` and `<name>.key`.
#[derive(Debug, Clone)]
pub struct Ca {
    /// The CA certificate (PEM), what clients trust.
    pub cert: PathBuf,
    key: PathBuf,
}

fn openssl(args: &[&str], cwd: &Path) {
    crate::process::run_ok(Command::new("openssl").args(args).current_dir(cwd));
}

impl Ca {
    /// A new self-signed CA named `name` in `dir`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        std::fs::create_dir_all(dir).expect("create the certificate directory");
        let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={name}"),
                "-keyout",
                &key,
                "-out",
                &cert,
            ],
            dir,
        );
        Ca {
            cert: dir.join(cert),
            key: dir.join(key),
        }
    }

    /// Signs a server certificate for `names` (`IP:127.0.0.1`,
    /// `DNS:broker.test`, …) into `<dir>/server.crt` and an unencrypted
    /// PKCS#8 `<dir>/server.key`, the layout `scripts/kafka` reads from
    /// `KAFKA_TLS_DIR`.
    pub fn server_cert(&self, dir: &Path, names: &[&str]) {
        std::fs::create_dir_all(dir).expect("create the certificate directory");
        let ext = dir.join("server.ext");
        std::fs::write(
            &ext,
            format!(
                "subjectAltName={}\nextendedKeyUsage=serverAuth\n",
                names.join(",")
            ),
        )
        .expect("write the extension file");
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-subj",
                "/CN=tributary-test-broker",
                "-keyout",
                "server.key",
                "-out",
                "server.csr",
            ],
            dir,
        );
        let (ca_cert, ca_key) = (
            self.cert.to_str().expect("UTF-8 path"),
            self.key.to_str().expect("UTF-8 path"),
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                ca_cert,
                "-CAkey",
                ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "server.ext",
                "-out",
                "server.crt",
            ],
            dir,
        );
    }
}
