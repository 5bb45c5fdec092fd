//! Outbound webhooks (README § Outbound webhooks). So far: the SSRF guard every
//! delivery goes through ([`guard`]); the signing is `palisade_auth::standard_webhooks`.

pub mod guard;
