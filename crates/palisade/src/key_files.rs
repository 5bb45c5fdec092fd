//! The server's keys: the access-token signing key and the encryption key, from the
//! configuration, or, in development, generated into the data directory on first start
//! (and reused after). Production refuses to start without explicit ones (see
//! [`crate::config`]).

use std::fs;
use std::io::Write;
use std::path::Path;

use anyhow::Context;
use palisade_auth::access::SigningKey;
use palisade_auth::secretbox::{self, SecretBox};

use crate::config::{IdentityConfig, Signing};

const SIGNING_KEY_FILE: &str = "jwt-ed25519.pem";
const ENCRYPTION_KEY_FILE: &str = "encryption.key";

pub struct Keys {
    pub signing: SigningKey,
    pub secrets: SecretBox,
}

pub fn load(c: &IdentityConfig) -> anyhow::Result<Keys> {
    let signing = match &c.signing {
        Signing::Hs256(secret) => SigningKey::hs256(secret.expose().as_bytes())?,
        Signing::KeyFile(file) => read_pem(file)?,
        Signing::Development => {
            let file = c.data_dir.join(SIGNING_KEY_FILE);
            if file.exists() {
                read_pem(&file)?
            } else {
                let key = SigningKey::generate_ed25519();
                let pem = key.to_pem().context("cannot encode the new signing key")?;
                write_private(&file, &pem)?;
                tracing::warn!(file = %file.display(), "generated a development signing key");
                key
            }
        }
    };
    let secrets = match &c.encryption_key {
        Some(key) => SecretBox::new(key.expose()).context("ENCRYPTION_KEY")?,
        None => {
            let file = c.data_dir.join(ENCRYPTION_KEY_FILE);
            let hex = if file.exists() {
                fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            } else {
                let hex = secretbox::generate_hex_key();
                write_private(&file, &hex)?;
                tracing::warn!(file = %file.display(), "generated a development encryption key");
                hex
            };
            SecretBox::from_hex(hex.trim()).with_context(|| file.display().to_string())?
        }
    };
    Ok(Keys { signing, secrets })
}

fn read_pem(file: &Path) -> anyhow::Result<SigningKey> {
    let pem =
        fs::read_to_string(file).with_context(|| format!("cannot read {}", file.display()))?;
    SigningKey::ed25519_from_pem(&pem).with_context(|| file.display().to_string())
}

/// Writes a new key file readable by its owner only; never overwrites.
fn write_private(file: &Path, contents: &str) -> anyhow::Result<()> {
    if let Some(dir) = file.parent() {
        fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options
        .open(file)
        .with_context(|| format!("cannot create {}", file.display()))?;
    f.write_all(contents.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))
}
