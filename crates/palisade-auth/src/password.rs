//! Passwords: argon2id hashes in PHC strings, and the policy a new password must meet
//! (docs/SECURITY.md § Passwords).
//!
//! Hashing costs ~19 MiB and tens of milliseconds per call: callers run it off the
//! async runtime, on a few threads, each with its own [`WorkArea`]. Nothing here does
//! I/O.

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};

/// The baseline's parameters: m = 19456 KiB, t = 2, p = 1 (OWASP; ASVS 11.4.2).
pub const BASELINE: Cost = Cost {
    m_kib: 19_456,
    t: 2,
    p: 1,
};

/// argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cost {
    pub m_kib: u32,
    pub t: u32,
    pub p: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(String),
    #[error("cannot hash: {0}")]
    Hash(String),
}

/// The result of checking a password against a stored hash.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// It matches; `rehash` when the stored hash uses other parameters than ours, so
    /// the caller stores a fresh hash while it has the password in hand.
    Match {
        rehash: bool,
    },
    Mismatch,
}

/// A thread's argon2 memory (19 MiB with the baseline's cost), allocated once and
/// reused by every hash on that thread. A fresh allocation per hash made glibc map,
/// zero and fault in the area each time: 22 ms per hash instead of 14 ms here.
#[derive(Default)]
pub struct WorkArea(Vec<Block>);

impl WorkArea {
    /// The first `n` blocks, allocated on first use.
    fn blocks(&mut self, n: usize) -> &mut [Block] {
        if self.0.len() < n {
            self.0.resize(n, Block::default());
        }
        &mut self.0[..n]
    }
}

/// Hashes and verifies with one set of parameters.
#[derive(Clone)]
pub struct Passwords {
    argon: Argon2<'static>,
    cost: Cost,
    /// A hash of a random password with these parameters, for [`Passwords::verify_dummy`].
    dummy: String,
}

impl Passwords {
    /// Computes one hash (the dummy) before it returns.
    pub fn new(cost: Cost) -> Result<Passwords, HashError> {
        let params = Params::new(cost.m_kib, cost.t, cost.p, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        let mut p = Passwords {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            cost,
            dummy: String::new(),
        };
        let secret = argon2::password_hash::try_generate_salt()
            .map_err(|e| HashError::Hash(e.to_string()))?;
        let secret: String = secret.iter().map(|b| format!("{b:02x}")).collect();
        p.dummy = p.hash(&secret, &mut WorkArea::default())?;
        Ok(p)
    }

    /// A PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), with a fresh 16-byte salt.
    pub fn hash(&self, password: &str, area: &mut WorkArea) -> Result<String, HashError> {
        let salt = argon2::password_hash::try_generate_salt()
            .map_err(|e| HashError::Hash(e.to_string()))
            .and_then(|bytes| Salt::new(&bytes).map_err(|e| HashError::Hash(e.to_string())))?;
        let mut out = [0u8; 32];
        let params = self.argon.params();
        self.argon
            .hash_password_into_with_memory(
                password.as_bytes(),
                &salt,
                &mut out,
                area.blocks(params.block_count()),
            )
            .map_err(|e| HashError::Hash(e.to_string()))?;
        let phc = PasswordHash {
            algorithm: Algorithm::Argon2id.ident(),
            version: Some(Version::V0x13.into()),
            params: ParamsString::try_from(params).map_err(|e| HashError::Hash(e.to_string()))?,
            salt: Some(salt),
            hash: Some(Output::new(&out).map_err(|e| HashError::Hash(e.to_string()))?),
        };
        Ok(phc.to_string())
    }

    /// Checks `password` against `stored`. A stored value that is not a PHC string we
    /// can read is a mismatch, never an error the caller could tell apart.
    pub fn verify(&self, password: &str, stored: &str, area: &mut WorkArea) -> Verdict {
        let Ok(parsed) = PasswordHash::new(stored) else {
            return Verdict::Mismatch;
        };
        let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
            return Verdict::Mismatch;
        };
        // The stored hash carries its own parameters; verify with those.
        let Ok(params) = Params::try_from(&parsed) else {
            return Verdict::Mismatch;
        };
        let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
            return Verdict::Mismatch;
        };
        let version = match parsed.version.map(Version::try_from) {
            None => Version::V0x13,
            Some(Ok(v)) => v,
            Some(Err(_)) => return Verdict::Mismatch,
        };
        let verifier = Argon2::new(algorithm, version, params.clone());
        let mut out = [0u8; Output::MAX_LENGTH];
        let Some(out) = out.get_mut(..expected.len()) else {
            return Verdict::Mismatch;
        };
        // A hash of a higher cost than ours (stored before the cost was lowered) gets
        // memory of its own rather than growing this thread's area for good.
        let mut larger = Vec::new();
        let blocks = if params.block_count() <= self.argon.params().block_count() {
            area.blocks(params.block_count())
        } else {
            larger.resize(params.block_count(), Block::default());
            &mut larger[..]
        };
        if verifier
            .hash_password_into_with_memory(password.as_bytes(), salt, out, blocks)
            .is_err()
        {
            return Verdict::Mismatch;
        }
        // `Output`'s equality is constant-time.
        if Output::new(out).ok().as_ref() != Some(expected) {
            return Verdict::Mismatch;
        }
        let current = algorithm == Algorithm::Argon2id
            && version == Version::V0x13
            && params.m_cost() == self.cost.m_kib
            && params.t_cost() == self.cost.t
            && params.p_cost() == self.cost.p;
        Verdict::Match { rehash: !current }
    }

    /// Spends the time of a verification against a hash that matches no password, so
    /// that a login for an unknown account takes as long as a wrong password does.
    pub fn verify_dummy(&self, password: &str, area: &mut WorkArea) -> Verdict {
        self.verify(password, &self.dummy, area);
        Verdict::Mismatch
    }
}

/// What a new password must meet.
#[derive(Clone, Copy, Debug)]
pub struct Policy {
    pub min_chars: usize,
    pub max_chars: usize,
    /// Lowest zxcvbn score accepted (0–4).
    pub min_score: u8,
}

/// The baseline: 12..=128 characters, zxcvbn score ≥ 3, no composition rules.
pub const POLICY: Policy = Policy {
    min_chars: 12,
    max_chars: 128,
    min_score: 3,
};

/// Why a password is refused, for a per-field 422.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Weakness {
    TooShort {
        min: usize,
    },
    TooLong {
        max: usize,
    },
    /// zxcvbn's verdict, with its advice when it gives one.
    Guessable {
        advice: Option<String>,
    },
}

impl Policy {
    /// Checks `password` as received (no trimming, no truncation), with `context` (the
    /// user's email, name…) counted as guessable words.
    pub fn check(&self, password: &str, context: &[&str]) -> Result<(), Weakness> {
        let chars = password.chars().count();
        if chars < self.min_chars {
            return Err(Weakness::TooShort {
                min: self.min_chars,
            });
        }
        if chars > self.max_chars {
            return Err(Weakness::TooLong {
                max: self.max_chars,
            });
        }
        // zxcvbn matches whole dictionary words: `Alice Wonderland` must also count as
        // `alice`, `wonderland` and `alicewonderland`.
        let words: Vec<String> = context
            .iter()
            .flat_map(|c| {
                let joined: String = c.chars().filter(|ch| ch.is_alphanumeric()).collect();
                [c.to_lowercase(), joined.to_lowercase()].into_iter().chain(
                    c.split(|ch: char| !ch.is_alphanumeric())
                        .filter(|w| w.chars().count() >= 3)
                        .map(str::to_lowercase),
                )
            })
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let entropy = zxcvbn::zxcvbn(password, &words);
        if u8::from(entropy.score()) < self.min_score {
            let advice = entropy.feedback().and_then(|f| {
                f.warning()
                    .map(|w| w.to_string())
                    .or_else(|| f.suggestions().first().map(|s| s.to_string()))
            });
            return Err(Weakness::Guessable { advice });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check behaviour, not cost.
    const CHEAP: Cost = Cost {
        m_kib: 64,
        t: 1,
        p: 1,
    };

    #[test]
    fn hashes_are_argon2id_phc_strings_with_the_baseline_parameters() {
        let p = Passwords::new(BASELINE).expect("params");
        let a = &mut WorkArea::default();
        let h = p.hash("correct horse battery staple", a).expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert_ne!(
            h,
            p.hash("correct horse battery staple", a).expect("hash"),
            "salted"
        );
        assert_eq!(
            p.verify("correct horse battery staple", &h, a),
            Verdict::Match { rehash: false }
        );
        assert_eq!(
            p.verify("correct horse battery stapler", &h, a),
            Verdict::Mismatch
        );
    }

    #[test]
    fn a_hash_with_other_parameters_verifies_and_asks_for_a_rehash() {
        let a = &mut WorkArea::default();
        let old = Passwords::new(CHEAP).expect("params");
        let h = old.hash("pw", a).expect("hash");
        let now = Passwords::new(Cost { t: 2, ..CHEAP }).expect("params");
        assert_eq!(now.verify("pw", &h, a), Verdict::Match { rehash: true });
        assert_eq!(old.verify("pw", &h, a), Verdict::Match { rehash: false });
    }

    #[test]
    fn a_costlier_hash_verifies_in_memory_of_its_own() {
        let a = &mut WorkArea::default();
        let costly = Passwords::new(Cost {
            m_kib: 256,
            ..CHEAP
        })
        .expect("params");
        let h = costly.hash("pw", a).expect("hash");
        let ours = Passwords::new(CHEAP).expect("params");
        let mut small = WorkArea::default();
        assert_eq!(
            ours.verify("pw", &h, &mut small),
            Verdict::Match { rehash: true }
        );
        assert_eq!(ours.verify("px", &h, &mut small), Verdict::Mismatch);
        assert!(
            small.0.len() <= 64,
            "the area stays at our cost: {}",
            small.0.len()
        );
    }

    /// Hashes stored by the argon2 crate's own hasher (as earlier versions stored them)
    /// verify here, and ours verify there: the work area changes where the memory comes
    /// from, not the hash.
    #[test]
    fn hashes_are_interchangeable_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let p = Passwords::new(CHEAP).expect("params");
        let params = Params::new(CHEAP.m_kib, CHEAP.t, CHEAP.p, None).expect("params");
        let reference = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let a = &mut WorkArea::default();
        // One area through both directions and both passwords: reuse must not leak
        // state from one hash into the next.
        for pw in ["first password", "second password"] {
            let theirs = reference
                .hash_password(pw.as_bytes())
                .expect("hash")
                .to_string();
            assert_eq!(p.verify(pw, &theirs, a), Verdict::Match { rehash: false });
            assert_eq!(p.verify("other", &theirs, a), Verdict::Mismatch);
            let ours = PasswordHash::new(&p.hash(pw, a).expect("hash")).expect("phc");
            assert!(reference.verify_password(pw.as_bytes(), &ours).is_ok());
            assert!(reference.verify_password(b"other", &ours).is_err());
        }
    }

    #[test]
    fn garbage_in_the_store_is_a_mismatch() {
        let p = Passwords::new(CHEAP).expect("params");
        let a = &mut WorkArea::default();
        for stored in [
            "",
            "plaintext",
            "$argon2id$v=19$m=64",
            "$2b$12$abcdefghijklmnopqrstuv",
        ] {
            assert_eq!(
                p.verify("plaintext", stored, a),
                Verdict::Mismatch,
                "{stored}"
            );
        }
        assert_eq!(p.verify_dummy("anything", a), Verdict::Mismatch);
    }

    #[test]
    fn the_policy_counts_characters_and_guessability() {
        assert_eq!(
            POLICY.check("short", &[]),
            Err(Weakness::TooShort { min: 12 })
        );
        assert!(matches!(
            POLICY.check(&"x".repeat(129), &[]),
            Err(Weakness::TooLong { max: 128 })
        ));
        // Twelve characters, but a keyboard walk.
        assert!(matches!(
            POLICY.check("qwertyuiop12", &[]),
            Err(Weakness::Guessable { .. })
        ));
        // The user's own name and email make a password guessable.
        let me = ["alice@wonder.land", "Alice Wonderland"];
        for own in ["alice@wonder.land", "AliceWonderland1"] {
            assert!(
                matches!(POLICY.check(own, &me), Err(Weakness::Guessable { .. })),
                "{own}"
            );
        }
        assert_eq!(POLICY.check("violet-harbor-quantum-81", &[]), Ok(()));
        // Multi-byte characters count once each.
        assert_eq!(
            POLICY.check("ééééééééééé", &[]),
            Err(Weakness::TooShort { min: 12 })
        );
    }
}
