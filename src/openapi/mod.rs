//! An OpenAPI 3.1 description (feature `openapi`, with [utoipa](https://docs.rs/utoipa))
//! of what this crate puts on the wire: the bearer key scheme, for APIs you document
//! with utoipa, and the management routes with their bodies and the error envelope.
//!
//! - [`ApiKeySecurity`]: a utoipa [`Modify`] that adds the `api_key` security scheme
//!   (HTTP bearer, with the key format) and the `Error` envelope schema to your
//!   document: `#[openapi(modifiers(&ApiKeySecurity))]`, or call
//!   [`Modify::modify`] on an [`OpenApi`] you build.
//! - [`ManagementRoutes::openapi`](crate::manage::ManagementRoutes::openapi): every
//!   route the management router mounts (at its configured paths), as a document to
//!   serve or merge into yours.
//!
//! ```
//! use utoipa::{openapi::OpenApiBuilder, Modify};
//! use tower_api_key::openapi::ApiKeySecurity;
//!
//! let mut doc = OpenApiBuilder::new().build();
//! ApiKeySecurity.modify(&mut doc);
//! let json = doc.to_json().unwrap();
//! assert!(json.contains(r#""scheme":"bearer""#));
//! ```

mod routes;
mod schemas;

use utoipa::{
    openapi::{
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
        Components, OpenApi,
    },
    Modify,
};

pub(crate) use routes::management;
use schemas::error_schema;

/// The name of the bearer key scheme in `components.securitySchemes`.
pub const API_KEY_SCHEME: &str = "api_key";
/// The name of the browser-session scheme the management routes use.
pub const SESSION_SCHEME: &str = "session";

/// The bearer key scheme: `Authorization: Bearer pk_live_<64 hex>`.
pub fn bearer_scheme() -> SecurityScheme {
    SecurityScheme::Http(
        HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("pk_live_<64 lowercase hex> (pk_test_… in test mode)")
            .description(Some(
                "An API key in `Authorization: Bearer <key>`. Keys are `pk_live_` or \
                 `pk_test_` and 64 lowercase hex digits; the first 24 characters are the \
                 key's public prefix. A refusal is the `Error` envelope with an RFC 6750 \
                 `WWW-Authenticate` challenge: 401 (missing, unknown, revoked, expired), \
                 403 (insufficient scope, outside the key's restrictions), 429 (rate \
                 limited, with `Retry-After`), 503 (the key store did not answer).",
            ))
            .build(),
    )
}

/// Adds the [`bearer_scheme`] (as `api_key`) and the `Error` envelope schema to a
/// document; see the [module docs](self).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiKeySecurity;

impl Modify for ApiKeySecurity {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Components::new);
        components
            .security_schemes
            .insert(API_KEY_SCHEME.into(), bearer_scheme());
        components.schemas.insert("Error".into(), error_schema());
    }
}
