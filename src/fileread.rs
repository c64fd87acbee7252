//! Reading the files a configuration names: bounded in size, and refusing anything that
//! is not a regular file before a read could block.
//!
//! Every file certwatch reads because a person named it (the configuration, the web
//! configuration, `ca_file`, the client and server certificates and keys, and, next,
//! certificate file sources) goes through [`read_file`]. A FIFO, a directory, a device
//! or a socket named by mistake (or swapped in by someone else) must not freeze a
//! reload or fill memory, so:
//!
//! 1. the path is `stat`ed, following symbolic links, and anything but a regular file
//!    is refused, as is a file already larger than the limit;
//! 2. it is opened with `O_NONBLOCK` (and `O_NOCTTY`), so a FIFO swapped in after the
//!    `stat` cannot block the `open` (an `open` of a FIFO for reading waits for a
//!    writer otherwise);
//! 3. the open descriptor is `fstat`ed and must still be a regular file;
//! 4. at most `limit + 1` bytes are read, so a file that grows is still bounded.
//!
//! The PEM helpers ([`read_certificates`], [`read_private_key`]) add the parsing every
//! caller needs. Errors are values with the evidence (the path, the kind of file, the
//! limit) and say what to do; where the path was written (file, line, column) is the
//! caller's to add. Reading is blocking: callers run it off the async workers.
//!
//! For certificate file sources, [`read_file_keyed`] also returns the file's
//! [`FileKey`] (device, inode, size, modification and change times) so that a re-read
//! can skip a file [`file_key`] shows unchanged, and [`glob`] expands globs with a
//! bounded, loop-safe directory walk.

pub mod glob;

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

/// The largest PEM file read: a bundle of every public root is about 250 KiB.
pub const PEM_LIMIT: u64 = 4 * MIB;

/// One mebibyte.
pub const MIB: u64 = 1024 * 1024;

/// What a path that is not a regular file turned out to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A directory.
    Directory,
    /// A named pipe (FIFO): reading it waits for a writer.
    Fifo,
    /// A Unix domain socket.
    Socket,
    /// A character device, such as `/dev/zero` or a terminal.
    CharDevice,
    /// A block device, such as a disk.
    BlockDevice,
    /// Anything else the platform reports.
    Other,
}

impl FileKind {
    fn of(file_type: std::fs::FileType) -> FileKind {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt;
            if file_type.is_fifo() {
                return FileKind::Fifo;
            }
            if file_type.is_socket() {
                return FileKind::Socket;
            }
            if file_type.is_char_device() {
                return FileKind::CharDevice;
            }
            if file_type.is_block_device() {
                return FileKind::BlockDevice;
            }
        }
        if file_type.is_dir() {
            FileKind::Directory
        } else {
            FileKind::Other
        }
    }

    /// The kind in words, as in "it is a named pipe (FIFO)".
    pub const fn as_str(self) -> &'static str {
        match self {
            FileKind::Directory => "a directory",
            FileKind::Fifo => "a named pipe (FIFO)",
            FileKind::Socket => "a socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Other => "not a regular file",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A size in the largest whole unit, for messages: `4 MiB`, `1536 KiB`, `17 bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= MIB && n % MIB == 0 => write!(f, "{} MiB", n / MIB),
            n if n >= 1024 && n % 1024 == 0 => write!(f, "{} KiB", n / 1024),
            1 => f.write_str("1 byte"),
            n => write!(f, "{n} bytes"),
        }
    }
}

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// Nothing exists at the path (or a symbolic link on it points nowhere).
    #[error("cannot read {}: no such file; check the path", path.display())]
    NotFound {
        /// The path.
        path: PathBuf,
    },
    /// The file exists and certwatch may not read it.
    #[error("cannot read {}: permission denied; make it readable by the user certwatch runs as", path.display())]
    PermissionDenied {
        /// The path.
        path: PathBuf,
    },
    /// The path is a directory, a FIFO, a device or a socket.
    #[error("cannot read {}: it is {kind}, not a regular file; name a regular file (FIFOs, devices and directories are refused so that reading cannot block certwatch)", path.display())]
    NotRegular {
        /// The path.
        path: PathBuf,
        /// What it is.
        kind: FileKind,
    },
    /// The file is larger than the limit for its use.
    #[error("cannot read {}: it is larger than {} ({}), the most certwatch reads for this file; name the right file or make it smaller", path.display(), Size(*limit), size.map_or_else(|| "it grew while being read".to_owned(), |s| format!("{}", Size(s))))]
    TooLarge {
        /// The path.
        path: PathBuf,
        /// The limit.
        limit: u64,
        /// The size `stat` reported, when it was already over the limit.
        size: Option<u64>,
    },
    /// The file is not UTF-8 text where text is expected.
    #[error("cannot read {}: it is not UTF-8 text (invalid byte at offset {offset}); name a text file", path.display())]
    NotText {
        /// The path.
        path: PathBuf,
        /// Offset of the first byte that is not UTF-8.
        offset: usize,
    },
    /// Any other I/O error.
    #[error("cannot read {}: {source}; check the path and the file system", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl ReadError {
    /// The path that could not be read.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotFound { path }
            | ReadError::PermissionDenied { path }
            | ReadError::NotRegular { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotText { path, .. }
            | ReadError::Io { path, .. } => path,
        }
    }

    fn from_io(path: &Path, source: std::io::Error) -> ReadError {
        let path = path.to_owned();
        match source.kind() {
            std::io::ErrorKind::NotFound => ReadError::NotFound { path },
            std::io::ErrorKind::PermissionDenied => ReadError::PermissionDenied { path },
            _ => ReadError::Io { path, source },
        }
    }
}

/// Reads the regular file at `path`, at most `limit` bytes; see the module docs for
/// what is refused and why. Blocking.
pub fn read_file(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let metadata = std::fs::metadata(path).map_err(|e| ReadError::from_io(path, e))?;
    check_metadata(path, &metadata, limit)?;
    let file = open_nonblocking(path).map_err(|e| ReadError::from_io(path, e))?;
    // The path may have been replaced between the stat and the open.
    let metadata = file.metadata().map_err(|e| ReadError::from_io(path, e))?;
    check_metadata(path, &metadata, limit)?;
    read_bounded(path, file, &metadata, limit)
}

/// What identifies one version of a file without reading it: device, inode, size,
/// and the modification and change times in nanoseconds. A rewrite, a rename over it,
/// a symlink swapped to another file and a `chmod` each change it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileKey {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileKey {
    #[cfg(unix)]
    fn of(metadata: &std::fs::Metadata) -> FileKey {
        use std::os::unix::fs::MetadataExt;
        FileKey {
            dev: metadata.dev(),
            ino: metadata.ino(),
            size: metadata.size(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            ctime_ns: i128::from(metadata.ctime()) * 1_000_000_000
                + i128::from(metadata.ctime_nsec()),
        }
    }

    #[cfg(not(unix))]
    fn of(metadata: &std::fs::Metadata) -> FileKey {
        let ns = |t: std::io::Result<std::time::SystemTime>| {
            t.ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128)
        };
        FileKey {
            dev: 0,
            ino: 0,
            size: metadata.len(),
            mtime_ns: ns(metadata.modified()),
            ctime_ns: ns(metadata.created()),
        }
    }
}

/// The [`FileKey`] of the regular file at `path` (symbolic links followed), without
/// opening it; refused as [`read_file`] would refuse it. Blocking.
pub fn file_key(path: &Path, limit: u64) -> Result<FileKey, ReadError> {
    let metadata = std::fs::metadata(path).map_err(|e| ReadError::from_io(path, e))?;
    check_metadata(path, &metadata, limit)?;
    Ok(FileKey::of(&metadata))
}

/// [`read_file`], with the [`FileKey`] of the file as it was opened. Blocking.
pub fn read_file_keyed(path: &Path, limit: u64) -> Result<(Vec<u8>, FileKey), ReadError> {
    let metadata = std::fs::metadata(path).map_err(|e| ReadError::from_io(path, e))?;
    check_metadata(path, &metadata, limit)?;
    let file = open_nonblocking(path).map_err(|e| ReadError::from_io(path, e))?;
    let metadata = file.metadata().map_err(|e| ReadError::from_io(path, e))?;
    check_metadata(path, &metadata, limit)?;
    let key = FileKey::of(&metadata);
    Ok((read_bounded(path, file, &metadata, limit)?, key))
}

fn read_bounded(
    path: &Path,
    file: std::fs::File,
    metadata: &std::fs::Metadata,
    limit: u64,
) -> Result<Vec<u8>, ReadError> {
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::from_io(path, e))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            limit,
            size: None,
        });
    }
    Ok(bytes)
}

/// [`read_file`], for a file that must be UTF-8 text.
pub fn read_text(path: &Path, limit: u64) -> Result<String, ReadError> {
    String::from_utf8(read_file(path, limit)?).map_err(|e| ReadError::NotText {
        path: path.to_owned(),
        offset: e.utf8_error().valid_up_to(),
    })
}

fn check_metadata(path: &Path, metadata: &std::fs::Metadata, limit: u64) -> Result<(), ReadError> {
    if !metadata.is_file() {
        return Err(ReadError::NotRegular {
            path: path.to_owned(),
            kind: FileKind::of(metadata.file_type()),
        });
    }
    if metadata.len() > limit {
        return Err(ReadError::TooLarge {
            path: path.to_owned(),
            limit,
            size: Some(metadata.len()),
        });
    }
    Ok(())
}

#[cfg(unix)]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
}

#[cfg(not(unix))]
fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

/// Why a PEM file did not yield what was asked of it.
#[derive(Debug, thiserror::Error)]
pub enum PemError {
    /// The file could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// A PEM section is broken.
    #[error("{} does not hold PEM {what}: {detail}; check that the file is complete and unmodified", path.display())]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What was expected: `certificates` or `a private key`.
        what: &'static str,
        /// What is wrong, in words; never the file's content.
        detail: String,
    },
    /// The file holds no certificate section.
    #[error("{} holds no PEM certificate (-----BEGIN CERTIFICATE-----); name a PEM certificate file", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The file holds no private key section.
    #[error("{} holds no PEM private key (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY); name the key file", path.display())]
    NoPrivateKey {
        /// The file.
        path: PathBuf,
    },
}

impl PemError {
    /// The file concerned.
    pub fn path(&self) -> &Path {
        match self {
            PemError::Read(e) => e.path(),
            PemError::Malformed { path, .. }
            | PemError::NoCertificate { path }
            | PemError::NoPrivateKey { path } => path,
        }
    }
}

/// Every certificate of the PEM file at `path` (at most [`PEM_LIMIT`] bytes), at least
/// one; other sections (keys, parameters) are skipped.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let bytes = read_file(path, PEM_LIMIT)?;
    parse_certificates(path, &bytes)
}

/// Every certificate of PEM `bytes` that came from `path`, at least one.
pub fn parse_certificates(
    path: &Path,
    bytes: &[u8],
) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| PemError::Malformed {
            path: path.to_owned(),
            what: "certificates",
            detail: describe(&e, true),
        })?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate {
            path: path.to_owned(),
        });
    }
    Ok(certs)
}

/// The first private key of the PEM file at `path` (at most [`PEM_LIMIT`] bytes);
/// other sections (certificates) are skipped.
pub fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, PemError> {
    let bytes = read_file(path, PEM_LIMIT)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        rustls_pki_types::pem::Error::NoItemsFound => PemError::NoPrivateKey {
            path: path.to_owned(),
        },
        e => PemError::Malformed {
            path: path.to_owned(),
            what: "a private key",
            detail: describe(&e, false),
        },
    })
}

/// A PEM error in words (the library shows lines as bytes). A key file's content is
/// never quoted: `public` is false for them.
fn describe(e: &rustls_pki_types::pem::Error, public: bool) -> String {
    use rustls_pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { end_marker } => format!(
            "a PEM section has no end line ({})",
            String::from_utf8_lossy(end_marker)
        ),
        E::IllegalSectionStart { line } if public => format!(
            "a PEM section starts with an invalid line ({})",
            String::from_utf8_lossy(line)
        ),
        E::IllegalSectionStart { .. } => "a PEM section starts with an invalid line".into(),
        E::Base64Decode(detail) if public => {
            format!("a PEM section is not valid base64 ({detail})")
        }
        E::Base64Decode(_) => "a PEM section is not valid base64".into(),
        E::SectionTooLarge => "a PEM section is too large".into(),
        E::NoItemsFound => "no PEM section of that type".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_within_the_limit_is_read_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_file(&path, 10).unwrap(), b"0123456789");
        assert_eq!(read_text(&path, 10).unwrap(), "0123456789");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_with_its_size_and_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big");
        std::fs::write(&path, vec![b'x'; 2048]).unwrap();
        let e = read_file(&path, 1024).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::TooLarge {
                    limit: 1024,
                    size: Some(2048),
                    ..
                }
            ),
            "{e:?}"
        );
        let text = e.to_string();
        assert!(
            text.contains("larger than 1 KiB (2 KiB)") && text.contains("big"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_file_and_a_directory_are_named_for_what_they_are() {
        let dir = tempfile::tempdir().unwrap();
        let missing = read_file(&dir.path().join("missing"), 10).unwrap_err();
        assert!(matches!(missing, ReadError::NotFound { .. }), "{missing:?}");
        assert!(missing.to_string().contains("no such file"), "{missing}");
        let directory = read_file(dir.path(), 10).unwrap_err();
        assert!(
            matches!(
                directory,
                ReadError::NotRegular {
                    kind: FileKind::Directory,
                    ..
                }
            ),
            "{directory:?}"
        );
        assert!(
            directory
                .to_string()
                .contains("it is a directory, not a regular file"),
            "{directory}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_character_device_is_refused_before_any_read() {
        let e = read_file(Path::new("/dev/zero"), PEM_LIMIT).unwrap_err();
        assert!(
            matches!(
                e,
                ReadError::NotRegular {
                    kind: FileKind::CharDevice,
                    ..
                }
            ),
            "{e:?}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_blocking_even_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let link = dir.path().join("link.pem");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        for path in [&fifo, &link] {
            let e = read_file(path, 10).unwrap_err();
            assert!(
                matches!(
                    e,
                    ReadError::NotRegular {
                        kind: FileKind::Fifo,
                        ..
                    }
                ),
                "{e:?}"
            );
            assert!(e.to_string().contains("named pipe (FIFO)"), "{e}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn opening_a_fifo_nonblocking_does_not_wait_for_a_writer() {
        // The race the open flags guard against: a FIFO swapped in after the stat.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let file = open_nonblocking(&fifo).expect("a nonblocking open returns at once");
        let metadata = file.metadata().unwrap();
        let e = check_metadata(&fifo, &metadata, 10).unwrap_err();
        assert!(matches!(e, ReadError::NotRegular { .. }), "{e:?}");
    }

    #[test]
    fn text_must_be_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bin");
        std::fs::write(&path, b"ab\xffcd").unwrap();
        let e = read_text(&path, 10).unwrap_err();
        assert!(matches!(e, ReadError::NotText { offset: 2, .. }), "{e:?}");
    }

    #[test]
    fn pem_files_yield_certificates_or_say_what_they_hold() {
        let dir = tempfile::tempdir().unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["a.example".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let both = dir.path().join("both.pem");
        std::fs::write(&both, format!("{}{}", key.serialize_pem(), cert.pem())).unwrap();
        assert_eq!(read_certificates(&both).unwrap().len(), 1);
        assert!(read_private_key(&both).is_ok());

        let key_only = dir.path().join("key.pem");
        std::fs::write(&key_only, key.serialize_pem()).unwrap();
        let e = read_certificates(&key_only).unwrap_err();
        assert!(matches!(e, PemError::NoCertificate { .. }), "{e:?}");
        let cert_only = dir.path().join("cert.pem");
        std::fs::write(&cert_only, cert.pem()).unwrap();
        let e = read_private_key(&cert_only).unwrap_err();
        assert!(matches!(e, PemError::NoPrivateKey { .. }), "{e:?}");

        let broken = dir.path().join("broken.pem");
        let pem = key.serialize_pem();
        std::fs::write(&broken, &pem[..pem.len() / 2]).unwrap();
        let e = read_private_key(&broken).unwrap_err();
        let text = e.to_string();
        assert!(text.contains("no end line"), "{text}");
        let secret_line = pem.lines().nth(1).unwrap();
        assert!(!text.contains(secret_line), "key content quoted: {text}");
    }

    #[test]
    fn sizes_print_in_their_largest_whole_unit() {
        assert_eq!(Size(4 * MIB).to_string(), "4 MiB");
        assert_eq!(Size(1536 * 1024).to_string(), "1536 KiB");
        assert_eq!(Size(17).to_string(), "17 bytes");
    }
}
