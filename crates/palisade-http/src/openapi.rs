//! The OpenAPI 3.1 document served at `/openapi.json`, generated from the handlers'
//! `#[utoipa::path]` annotations. Every new endpoint is listed in `paths(...)`.

use utoipa::OpenApi;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes::{admin, auth, infra, me, ops};

#[derive(OpenApi)]
#[openapi(
    info(title = "Palisade", description = "A production-hardened JSON API backend."),
    paths(
        ops::live, ops::ready, ops::health, ops::health_detailed, ops::metrics, ops::openapi,
        ops::jwks,
        auth::register, auth::login, auth::login_mfa, auth::refresh, auth::step_up, auth::logout,
        auth::csrf,
        me::me, me::update_me, me::delete_me, me::change_password, me::sessions,
        me::end_session, me::setup_2fa, me::confirm_2fa, me::disable_2fa,
        admin::list_users, admin::update_user, admin::end_sessions, admin::audit,
        infra::clear_cache,
    ),
    modifiers(&BearerScheme),
    tags(
        (name = "operations", description = "Probes, metrics and this document"),
        (name = "identity", description = "Accounts, sign-in, sessions and 2FA"),
        (name = "administration", description = "Users and the audit trail"),
    ),
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme the authenticated paths name.
struct BearerScheme;

impl utoipa::Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The document as JSON text.
pub fn document() -> String {
    ApiDoc::openapi()
        .to_json()
        .unwrap_or_else(|_| "{}".to_owned())
}
