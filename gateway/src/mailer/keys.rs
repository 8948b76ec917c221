//! The mailer's private keys: `keygen` writes one, [`Keyring::load`] reads the ones the mailer
//! holds. File formats are in `linktoken_core::mail`; sealing in `linktoken_core::mailbox`.

use linktoken_core::mail;
use linktoken_core::mailbox::{self, Secret, FINGERPRINT_BYTES, KEY_BYTES};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `<key file>.pub`.
pub fn public_path(key_file: &Path) -> PathBuf {
    let mut name = key_file.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn write_new(path: &Path, mode: u32, content: &str) -> Result<(), String> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => {
                format!("{} exists; refusing to overwrite it", path.display())
            }
            _ => format!("cannot create {}: {e}", path.display()),
        })?;
    file.write_all(content.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes a new key pair: the private key to `key_file` (0600), the public key as hex to
/// `key_file.pub`. Refuses if either exists. Returns the public key.
pub fn keygen(key_file: &Path) -> Result<[u8; KEY_BYTES], String> {
    let pub_file = public_path(key_file);
    if key_file.exists() {
        return Err(format!(
            "{} exists; refusing to overwrite it",
            key_file.display()
        ));
    }
    if pub_file.exists() {
        return Err(format!(
            "{} exists; refusing to overwrite it",
            pub_file.display()
        ));
    }
    let (secret, public) = mailbox::keypair();
    write_new(key_file, 0o600, &mail::format_key_file(&secret))?;
    write_new(&pub_file, 0o644, &mail::format_public_key(&public))?;
    Ok(public)
}

/// `mailer keygen`: exit status.
pub fn keygen_main(args: super::cli::Keygen) -> i32 {
    match keygen(&args.key_file) {
        Ok(public) => {
            println!(
                "Wrote the private key to {} (mode 0600) and the public key to {}.",
                args.key_file.display(),
                public_path(&args.key_file).display()
            );
            println!(
                "Key fingerprint: {}",
                hex::encode(mailbox::fingerprint(&public))
            );
            println!("Make the database seal messages to it (as the extension's owner):");
            println!("{}", mail::set_key_sql(&public));
            0
        }
        Err(e) => {
            eprintln!("linktoken-gateway mailer keygen: {e}");
            2
        }
    }
}

/// The private keys this mailer holds, by fingerprint.
pub struct Keyring {
    keys: Vec<([u8; FINGERPRINT_BYTES], [u8; KEY_BYTES])>,
}

impl Keyring {
    /// Reads every key file. Errors name the file, never its content. A file others may read
    /// is used, with a warning.
    pub fn load(files: &[PathBuf]) -> Result<Keyring, String> {
        let mut keys = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("--key-file {}: {e}", path.display()))?;
            let secret = mail::parse_key_file(&text)
                .map_err(|e| format!("--key-file {}: {e}", path.display()))?;
            if let Ok(meta) = std::fs::metadata(path) {
                if meta.permissions().mode() & 0o077 != 0 {
                    eprintln!(
                        "warn: --key-file {} may be read by other users (mode {:o}); chmod 600 it",
                        path.display(),
                        meta.permissions().mode() & 0o777
                    );
                }
            }
            let fingerprint = mailbox::fingerprint(&mailbox::public_key_of(&secret));
            if !keys.iter().any(|(f, _)| *f == fingerprint) {
                keys.push((fingerprint, secret));
            }
        }
        Ok(Keyring { keys })
    }

    /// The fingerprints, as the outbox stores them.
    pub fn fingerprints(&self) -> Vec<Vec<u8>> {
        self.keys.iter().map(|(f, _)| f.to_vec()).collect()
    }

    /// Opens a message sealed to the key with this fingerprint; None if the mailer does not
    /// hold it or the message does not open.
    pub fn open(&self, fingerprint: &[u8], sealed: &[u8]) -> Option<Secret> {
        let (_, secret) = self.keys.iter().find(|(f, _)| f[..] == *fingerprint)?;
        mailbox::open(secret, sealed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keygen_writes_0600_and_refuses_to_overwrite() {
        let dir = std::env::temp_dir().join(format!("linktoken-keygen-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = dir.join("mailer.key");
        let _ = std::fs::remove_file(&key);
        let _ = std::fs::remove_file(public_path(&key));
        let public = keygen(&key).unwrap();
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let ring = Keyring::load(std::slice::from_ref(&key)).unwrap();
        let sealed = mailbox::seal(
            &public,
            &Secret {
                token: "ltk_x".into(),
                code: None,
            },
        )
        .unwrap();
        let fp = mailbox::fingerprint(&public);
        assert_eq!(ring.open(&fp, &sealed).unwrap().token, "ltk_x");
        assert!(ring.open(&[0; 8], &sealed).is_none());
        let before = std::fs::read(&key).unwrap();
        assert!(keygen(&key).unwrap_err().contains("refusing to overwrite"));
        assert_eq!(std::fs::read(&key).unwrap(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
