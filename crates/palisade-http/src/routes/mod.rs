//! Handlers, grouped by resource, and the one place routes are registered.
//!
//! Each endpoint is declared once: its handler's `#[utoipa::path]` annotation names
//! the method and path, and `routes!(handler)` turns it into both the route and its
//! entry in the OpenAPI document. Each resource module's `routes()` puts its handlers in
//! groups under a [`Guard`] (a rate-limit tier for every `/api/v1` route), so a route
//! cannot be served without its document entry, nor an API route without its tier.

pub mod account_email;
pub mod admin;
pub mod auth;
pub mod billing;
pub mod contracts;
pub mod dashboard;
pub mod exports;
pub mod infra;
pub mod list;
pub mod me;
pub mod notifications;
pub mod ops;
pub mod payments;
pub mod search;
pub mod stripe;
pub mod webhooks;

use axum::Router;
use axum::middleware::from_fn_with_state;
use utoipa::openapi::OpenApi;
use utoipa::openapi::extensions::ExtensionsBuilder;
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::layers::guard::{self, RouteGuard};
use crate::layers::ops_access;
use crate::layers::rate_limit::Tier;
use crate::openapi;
use crate::state::AppState;

/// What runs between routing and the handlers of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guard {
    /// Nothing: the probes and public documents.
    Open,
    /// Operators only ([`ops_access`]); everyone else gets 404.
    Ops,
    /// A rate-limit tier, then the body's media type ([`guard`]).
    Limited(Tier),
}

/// Groups of routes, each under its guard.
#[derive(Default)]
pub struct Routes {
    groups: Vec<(Guard, Vec<UtoipaMethodRouter<AppState>>)>,
}

impl Routes {
    /// Adds `routes` (each from `routes!(handler)`) under `guard`.
    pub fn group(
        mut self,
        guard: Guard,
        routes: impl IntoIterator<Item = UtoipaMethodRouter<AppState>>,
    ) -> Routes {
        self.groups.push((guard, routes.into_iter().collect()));
        self
    }

    pub fn merge(mut self, other: Routes) -> Routes {
        self.groups.extend(other.groups);
        self
    }

    /// The OpenAPI document of every route.
    pub fn openapi(&self) -> OpenApi {
        let mut doc = OpenApiRouter::<AppState>::with_openapi(openapi::base());
        for (guard, routes) in &self.groups {
            for (schemas, paths, method_router) in routes {
                let mut paths = paths.clone();
                if let Guard::Limited(tier) = guard {
                    mark_tier(&mut paths, *tier);
                }
                doc = doc.routes((schemas.clone(), paths, method_router.clone()));
            }
        }
        let mut doc = doc.into_openapi();
        openapi::finish(&mut doc);
        doc
    }

    /// Names given to two different schemas. utoipa keeps one of them silently, so
    /// an operation would be documented with another type's schema.
    pub fn schema_name_clashes(&self) -> Vec<String> {
        let mut seen: std::collections::BTreeMap<String, String> = Default::default();
        let mut clashes = Vec::new();
        for (_, routes) in &self.groups {
            for (schemas, _, _) in routes {
                for (name, schema) in schemas {
                    let json = serde_json::to_string(schema).unwrap_or_default();
                    match seen.get(name) {
                        Some(other) if *other != json => clashes.push(name.clone()),
                        Some(_) => {}
                        None => {
                            seen.insert(name.clone(), json);
                        }
                    }
                }
            }
        }
        clashes.sort();
        clashes.dedup();
        clashes
    }

    /// The router: each route behind its group's guard.
    pub fn into_router(self, state: &AppState) -> Router<AppState> {
        let mut router = OpenApiRouter::<AppState>::default();
        for (guard, routes) in self.groups {
            for (schemas, paths, method_router) in routes {
                // `route_layer`: a method the route lacks answers 405 without the guard.
                let method_router = match guard {
                    Guard::Open => method_router,
                    Guard::Ops => method_router
                        .route_layer(from_fn_with_state(state.clone(), ops_access::layer)),
                    Guard::Limited(tier) => method_router.route_layer(from_fn_with_state(
                        RouteGuard::new(state.clone(), tier, openapi::accepted_media_types(&paths)),
                        guard::layer,
                    )),
                };
                router = router.routes((schemas, paths, method_router));
            }
        }
        router.split_for_parts().0
    }
}

/// Every route Palisade serves.
pub fn all() -> Routes {
    Routes::default()
        .merge(ops::routes())
        .merge(auth::routes())
        .merge(account_email::routes())
        .merge(me::routes())
        .merge(admin::routes())
        .merge(billing::routes())
        .merge(infra::routes())
        .merge(contracts::routes())
        .merge(dashboard::routes())
        .merge(exports::routes())
        .merge(payments::routes())
        .merge(notifications::routes())
        .merge(search::routes())
        .merge(stripe::routes())
        .merge(webhooks::routes())
}

/// Records the tier on each operation (`x-rate-limit-tier`), for clients and for the
/// test that every API operation has one.
fn mark_tier(paths: &mut utoipa::openapi::path::Paths, tier: Tier) {
    for item in paths.paths.values_mut() {
        for (_, op) in openapi::operations_mut(item) {
            let tier = ExtensionsBuilder::new()
                .add("x-rate-limit-tier", tier.name())
                .build();
            match &mut op.extensions {
                Some(e) => e.merge(tier),
                None => op.extensions = Some(tier),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_two_schemas_share_a_name() {
        assert_eq!(super::all().schema_name_clashes(), Vec::<String>::new());
    }
}
