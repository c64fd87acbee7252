//! Interoperability with a real NNTP server: certwatch probes a private INN reader
//! daemon (`nnrpd`, from the Debian package `inn2`) with NNTP STARTTLS, and must report
//! what `openssl s_client -starttls nntp` reports for the same endpoint: chain length,
//! leaf serial, leaf notAfter and TLS version.
//!
//! INN can run unprivileged-port-wise without its news server: `nnrpd -D -f -b
//! 127.0.0.1 -p PORT` is a standalone reader daemon that stays in the foreground and
//! forks one process per connection. It reads `inn.conf` from `$INNCONF`, so the
//! instance has its own `inn.conf`, `readers.conf` (127.0.0.1 may read), `storage.conf`,
//! an active file with one group, and a tradindexed overview made by `tdx-util`, all in
//! its instance directory; innd, /etc/news and the machine's own INN are never used.
//! nnrpd must be started as root: it binds, then switches to the `news` user, which
//! owns the writable directories and the key.
//!
//! Debian's `inn2` package fails to configure on a machine whose hostname does not
//! resolve (its postinst runs `innconfval`), which leaves it unpacked but unconfigured.
//! The test only needs its files, so `CERTWATCH_INTEROP_INN2_ROOT` may name a directory
//! into which the package was extracted instead (`apt-get download inn2 && dpkg-deb -x
//! inn2_*.deb DIR`); without it, the installed package, and then `target/inn2-root`
//! (where `.ci/run` extracts it). Without any (or root, or the `news` user from
//! `inn2-inews`/base-passwd) the test is ignored, and fails under `CI=true` (see
//! `support/tools.rs`).

use std::path::{Path, PathBuf};

use crate::support::daemon::{self, Chain, Daemon, Instance, Launch, Ready, ServerTls, StartError};
use crate::support::openssl;
use crate::support::tools::{trial, Need, Remedy, Trial, OPENSSL, ROOT};

pub fn trials() -> Vec<Trial> {
    vec![trial!(
        &[INN2, ROOT, OPENSSL],
        async nnrpd_starttls_chain_matches_openssl_s_client
    )]
}

/// Where the package's files are when it was extracted rather than installed.
const ROOT_VARIABLE: &str = "CERTWATCH_INTEROP_INN2_ROOT";

/// The one newsgroup of every instance.
const GROUP: &str = "local.certwatch";

/// INN's reader daemon and overview tool, and the `news` user.
const INN2: Need = Need {
    name: "inn2",
    remedy: Remedy::Do("bash .ci/run extracts inn2 into target/inn2-root"),
    check: installed,
};

fn installed() -> Result<(), String> {
    let lib = news_lib();
    for program in ["nnrpd", "tdx-util"] {
        let path = lib.join("bin").join(program);
        if !path.is_file() {
            return Err(format!(
                "{} is missing (Debian package `inn2`, installed, extracted into \
                 target/inn2-root, or into the directory named by {ROOT_VARIABLE})",
                path.display()
            ));
        }
    }
    daemon::user_ids("news", "base-passwd").map(|_| ())
}

/// INN's programs and libraries (`ROOT/usr/lib/news`): from `$ROOT_VARIABLE`, else the
/// installed package, else `target/inn2-root`.
fn news_lib() -> PathBuf {
    let lib = |root: PathBuf| root.join("usr/lib/news");
    if let Some(root) = std::env::var_os(ROOT_VARIABLE) {
        return lib(PathBuf::from(root));
    }
    let installed = lib(PathBuf::from("/"));
    let extracted = lib(Path::new(env!("CARGO_MANIFEST_DIR")).join("target/inn2-root"));
    if !installed.join("bin/nnrpd").is_file() && extracted.join("bin/nnrpd").is_file() {
        extracted
    } else {
        installed
    }
}

/// A running private nnrpd; stopped when dropped.
struct Nnrpd {
    daemon: Daemon,
    port: u16,
}

impl Nnrpd {
    async fn start(tls: &ServerTls) -> Result<Nnrpd, String> {
        let lib = news_lib();
        let news = daemon::user_ids("news", "base-passwd")?;
        daemon::start_with_retries("inn2", || Self::try_start(&lib, news, tls)).await
    }

    async fn try_start(lib: &Path, news: (u32, u32), tls: &ServerTls) -> Result<Nnrpd, StartError> {
        let mut instance = Instance::new("inn2")?;
        let port = instance.port()?;
        let files = instance.write_tls("tls", tls, Some(news))?;
        let etc = instance.mkdir("etc", None, 0o755)?;
        for dir in [
            "db",
            "run",
            "log",
            "tmp",
            "spool",
            "spool/articles",
            "spool/overview",
        ] {
            instance.mkdir(dir, Some(news), 0o755)?;
        }
        let dir = instance.path().to_owned();
        let conf = instance.write_config(
            "etc/inn.conf",
            &format!(
                "# A private instance for certwatch's interoperability tests.\n\
                 mta: \"/bin/false %s\"\n\
                 organization: \"certwatch interop\"\n\
                 pathhost: localhost\n\
                 domain: localdomain\n\
                 server: 127.0.0.1\n\
                 ovmethod: tradindexed\n\
                 hismethod: hisv6\n\
                 pathnews: {lib}\n\
                 pathbin: {lib}/bin\n\
                 pathetc: {etc}\n\
                 pathfilter: {etc}\n\
                 pathcontrol: {etc}\n\
                 pathdb: {dir}/db\n\
                 pathrun: {dir}/run\n\
                 pathlog: {dir}/log\n\
                 pathtmp: {dir}/tmp\n\
                 pathhttp: {dir}/tmp\n\
                 pathspool: {dir}/spool\n\
                 patharticles: {dir}/spool/articles\n\
                 pathoverview: {dir}/spool/overview\n\
                 pathincoming: {dir}/spool\n\
                 pathoutgoing: {dir}/spool\n\
                 patharchive: {dir}/spool\n\
                 tlscertfile: {chain}\n\
                 tlskeyfile: {key}\n\
                 tlscafile: {ca}\n\
                 # No refusal when the machine is busy (the default refuses at load 16).\n\
                 nnrpdloadlimit: 0\n",
                lib = lib.display(),
                etc = etc.display(),
                dir = dir.display(),
                chain = files.chain.display(),
                key = files.key.display(),
                ca = files.ca.display(),
            ),
        )?;
        instance.write_config(
            "etc/readers.conf",
            "auth \"local\" {\n    hosts: \"127.0.0.1\"\n    default: \"<local>\"\n}\n\
             access \"local\" {\n    users: \"<local>\"\n    newsgroups: \"*\"\n}\n",
        )?;
        instance.write_config(
            "etc/storage.conf",
            "method timehash {\n    newsgroups: *\n    class: 0\n}\n",
        )?;
        instance.write(
            "db/active",
            &format!("{GROUP} 0000000000 0000000001 y\n"),
            Some(news),
            0o644,
        )?;
        instance.write(
            "db/newsgroups",
            &format!("{GROUP}\tcertwatch interop\n"),
            Some(news),
            0o644,
        )?;

        let with_inn = |launch: Launch| launch.env("INNCONF", &conf).env("LD_LIBRARY_PATH", lib);
        // The overview's group index, which nnrpd opens read-only.
        let tdx = Launch::new(lib.join("bin/tdx-util"))
            .args(["-c", "-n", GROUP])
            .user("news");
        instance.run("tdx-util", with_inn(tdx)).await?;

        let nnrpd = Launch::new(lib.join("bin/nnrpd")).args([
            "-D",
            "-f",
            "-b",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ]);
        let daemon = instance
            .spawn(with_inn(nnrpd), &[Ready::Port(port)])
            .await?;
        Ok(Nnrpd { daemon, port })
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

async fn nnrpd_starttls_chain_matches_openssl_s_client() {
    let chain = Chain::new();
    let server = daemon::running(Nnrpd::start(&chain.server_tls()).await);
    openssl::assert_certwatch_matches_openssl(&server.address(), "nntp", &chain, &|| {
        server.daemon.log()
    })
    .await;
}
