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

use utoipa::{
    openapi::{
        path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem},
        request_body::RequestBodyBuilder,
        response::{ResponseBuilder, ResponsesBuilder},
        schema::{
            AllOfBuilder, ArrayBuilder, ComponentsBuilder, ObjectBuilder, Ref, Schema,
            SchemaFormat, SchemaType, Type,
        },
        security::{
            ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        },
        Components, ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr,
        Required,
    },
    Modify,
};

use crate::manage::NamedKeysApi;

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

fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

fn time() -> ObjectBuilder {
    string().format(Some(SchemaFormat::KnownFormat(
        utoipa::openapi::KnownFormat::DateTime,
    )))
}

fn nullable(builder: ObjectBuilder, of: Type) -> ObjectBuilder {
    builder.schema_type(SchemaType::from_iter([of, Type::Null]))
}

fn integer() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Integer)
        .format(Some(SchemaFormat::KnownFormat(
            utoipa::openapi::KnownFormat::Int64,
        )))
}

fn strings() -> ArrayBuilder {
    ArrayBuilder::new().items(string())
}

fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

fn object(properties: &[(&str, RefOr<Schema>)], required: &[&str]) -> ObjectBuilder {
    let mut object = ObjectBuilder::new().schema_type(Type::Object);
    for (name, schema) in properties {
        object = object.property(*name, schema.clone());
    }
    for name in required {
        object = object.required(*name);
    }
    object
}

/// `{"error":{"code":…,"message":…}}`.
fn error_schema() -> RefOr<Schema> {
    let codes = [
        "unauthorized",
        "forbidden",
        "not_found",
        "invalid_request",
        "unprocessable_content",
        "conflict",
        "rate_limited",
        "internal_error",
    ];
    let inner = object(
        &[
            ("code", string().enum_values(Some(codes)).into()),
            ("message", string().into()),
        ],
        &["code", "message"],
    );
    object(&[("error", inner.into())], &["error"])
        .description(Some(
            "Every refusal and error: a code and a message that never contains a key.",
        ))
        .into()
}

fn usage_counts() -> ObjectBuilder {
    let names = [
        "admitted",
        "refused",
        "revoked",
        "expired",
        "restricted",
        "insufficient_scope",
        "rate_limited",
    ];
    let properties: Vec<(&str, RefOr<Schema>)> =
        names.iter().map(|n| (*n, integer().into())).collect();
    object(&properties, &names)
}

fn key_view() -> ObjectBuilder {
    let restrictions = object(
        &[
            ("ips", strings().into()),
            ("origins", strings().into()),
            ("routes", strings().into()),
        ],
        &["ips", "origins", "routes"],
    );
    object(
        &[
            ("id", string().into()),
            ("name", string().into()),
            (
                "prefix",
                string()
                    .pattern(Some("^pk_(live|test)_[0-9a-f]{16}$"))
                    .into(),
            ),
            ("mode", string().enum_values(Some(["live", "test"])).into()),
            ("scopes", strings().into()),
            (
                "status",
                string()
                    .enum_values(Some(["active", "retiring", "expired", "revoked"]))
                    .into(),
            ),
            ("created_at", time().into()),
            ("last_used_at", nullable(time(), Type::String).into()),
            ("expires_at", nullable(time(), Type::String).into()),
            ("revoked_at", nullable(time(), Type::String).into()),
            ("restrictions", restrictions.into()),
            ("rate_limit", nullable(string(), Type::String).into()),
            (
                "metadata",
                ObjectBuilder::new()
                    .schema_type(Type::Object)
                    .additional_properties(Some(string()))
                    .into(),
            ),
            (
                "usage",
                object(
                    &[
                        ("last_24_hours", reference("UsageCounts")),
                        ("last_30_days", reference("UsageCounts")),
                    ],
                    &["last_24_hours", "last_30_days"],
                )
                .description(Some(
                    "In the views that list keys, when the store keeps usage.",
                ))
                .into(),
            ),
        ],
        &[
            "id",
            "name",
            "prefix",
            "mode",
            "scopes",
            "status",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "restrictions",
            "rate_limit",
            "metadata",
        ],
    )
}

fn with(base: &str, extra: ObjectBuilder) -> RefOr<Schema> {
    RefOr::T(Schema::AllOf(
        AllOfBuilder::new()
            .item(reference(base))
            .item(extra)
            .build(),
    ))
}

/// The compact format's key schemas ([`NamedKeysApi::Compact`]).
fn compact_schemas(components: ComponentsBuilder) -> ComponentsBuilder {
    let listed = object(
        &[
            ("id", string().into()),
            ("name", string().into()),
            ("prefix", string().into()),
            ("createdAt", time().into()),
            ("lastUsed", nullable(time(), Type::String).into()),
        ],
        &["id", "name", "prefix", "createdAt", "lastUsed"],
    );
    let minted = object(
        &[
            ("id", string().into()),
            ("name", string().into()),
            (
                "key",
                string()
                    .description(Some("The raw key: shown this once."))
                    .into(),
            ),
            ("createdAt", time().into()),
        ],
        &["id", "name", "key", "createdAt"],
    );
    components
        .schema("CompactKey", listed)
        .schema("CompactMintedKey", minted)
}

fn components(compact: bool) -> Components {
    let minted = object(
        &[
            (
                "api_key",
                string()
                    .description(Some("The raw key: shown this once."))
                    .into(),
            ),
            ("message", string().into()),
            (
                "hook_errors",
                ArrayBuilder::new()
                    .items(object(
                        &[("hook", string().into()), ("error", string().into())],
                        &["hook", "error"],
                    ))
                    .into(),
            ),
        ],
        &["api_key", "message"],
    );
    let active = object(
        &[(
            "retiring",
            ArrayBuilder::new().items(reference("KeyView")).into(),
        )],
        &["retiring"],
    );
    let point = AllOfBuilder::new()
        .item(object(&[("start", time().into())], &["start"]))
        .item(reference("UsageCounts"));
    let usage = object(
        &[
            ("key_id", string().into()),
            ("from", time().into()),
            ("to", time().into()),
            ("step", string().enum_values(Some(["hour", "day"])).into()),
            ("buckets", ArrayBuilder::new().items(point).into()),
            ("total", reference("UsageCounts")),
        ],
        &["key_id", "from", "to", "step", "buckets", "total"],
    );
    let new_key = object(
        &[
            ("name", string().into()),
            ("scopes", strings().into()),
            ("expires_at", time().into()),
            ("mode", string().enum_values(Some(["live", "test"])).into()),
        ],
        &[],
    )
    .description(Some("Every field optional (a named key needs `name`)."));
    let key_ref = object(&[("id", string().into()), ("prefix", string().into())], &[])
        .description(Some("Names one key: by `id` or by `prefix`."));
    let rotation = object(
        &[
            ("grace_seconds", integer().into()),
            ("id", string().into()),
            ("prefix", string().into()),
        ],
        &[],
    );
    let builder = if compact {
        compact_schemas(ComponentsBuilder::new())
    } else {
        ComponentsBuilder::new()
    };
    builder
        .schema("Error", error_schema())
        .schema("UsageCounts", usage_counts())
        .schema("KeyView", key_view())
        .schema("MintedKey", with("KeyView", minted))
        .schema("ActiveKey", with("KeyView", active))
        .schema("KeyUsage", usage)
        .schema("NewKey", new_key)
        .schema("KeyRef", key_ref)
        .schema("Rotation", rotation)
        .security_scheme(API_KEY_SCHEME, bearer_scheme())
        .security_scheme(
            SESSION_SCHEME,
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                "session",
                "The owner's browser session (the session guard's cookie). A bearer key \
                 manages named keys only where the routes name a management scope.",
            ))),
        )
        .build()
}

/// One operation: its summary, body, answers and who may call it.
struct Op {
    summary: &'static str,
    body: Option<(&'static str, bool)>,
    ok: (&'static str, &'static str, RefOr<Schema>),
    errors: &'static [&'static str],
    usage_query: bool,
    bearer_too: bool,
}

fn json_content(schema: RefOr<Schema>) -> utoipa::openapi::Content {
    ContentBuilder::new().schema(Some(schema)).build()
}

fn operation(op: Op, id_in_path: bool) -> utoipa::openapi::path::Operation {
    let mut responses = ResponsesBuilder::new().response(
        op.ok.0,
        ResponseBuilder::new()
            .description(op.ok.1)
            .content("application/json", json_content(op.ok.2)),
    );
    for status in op.errors {
        let what = match *status {
            "400" => "The request's shape is wrong (the envelope says how).",
            "401" => "No session (or an invalid key).",
            "403" => "Refused (cross-origin, or a key acting beyond itself).",
            "404" => "No such key for this owner.",
            "405" => "Another method than the route takes.",
            "409" => "The key is no longer what the request assumed.",
            "413" => "The body is over 16 KiB.",
            "422" => "Well formed, but not allowed.",
            _ => "An error.",
        };
        responses = responses.response(
            *status,
            ResponseBuilder::new()
                .description(what)
                .content("application/json", json_content(reference("Error"))),
        );
    }
    let mut builder = OperationBuilder::new()
        .summary(Some(op.summary))
        .tag("API keys")
        .responses(responses.build())
        .security(SecurityRequirement::new(
            SESSION_SCHEME,
            Vec::<String>::new(),
        ));
    if op.bearer_too {
        builder = builder.security(SecurityRequirement::new(
            API_KEY_SCHEME,
            Vec::<String>::new(),
        ));
    }
    if let Some((schema, required)) = op.body {
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .content("application/json", json_content(reference(schema)))
                .required(Some(if required {
                    Required::True
                } else {
                    Required::False
                }))
                .build(),
        ));
    }
    if id_in_path {
        builder = builder.parameter(
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .schema(Some(string())),
        );
    }
    if op.usage_query {
        let query = |name: &str, schema: ObjectBuilder, about: &str| {
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .description(Some(about))
                .schema(Some(schema))
        };
        builder = builder
            .parameter(query(
                "from",
                time(),
                "The first bucket's start (default: 24 hours, or 30 days by day, before `to`).",
            ))
            .parameter(query(
                "to",
                time(),
                "Buckets start before this (default: now).",
            ))
            .parameter(query(
                "step",
                string().enum_values(Some(["hour", "day"])),
                "Bucket length (default `hour`).",
            ));
        if !id_in_path {
            builder = builder.parameter(query(
                "id",
                string(),
                "Another of the owner's keys than the active one.",
            ));
        }
    }
    builder.build()
}

/// The leak-report route: GitHub's secret scanning partner format, authenticated by
/// its signature headers rather than a session or a key.
#[cfg(feature = "secret-scanning")]
fn leak_reports() -> utoipa::openapi::path::Operation {
    let reported = object(
        &[
            ("token", string().into()),
            ("type", string().into()),
            ("url", string().into()),
            ("source", string().into()),
        ],
        &["token", "type"],
    );
    let verdict = object(
        &[
            (
                "token_hash",
                string()
                    .description(Some("SHA-256 of the token, hex."))
                    .into(),
            ),
            ("token_type", string().into()),
            (
                "label",
                string()
                    .enum_values(Some(["true_positive", "false_positive"]))
                    .into(),
            ),
        ],
        &["token_hash", "token_type", "label"],
    );
    let header = |name: &str, about: &str| {
        ParameterBuilder::new()
            .name(name)
            .parameter_in(ParameterIn::Header)
            .required(Required::True)
            .description(Some(about))
            .schema(Some(string()))
    };
    let too_large = format!(
        "Over {} KiB or {} tokens.",
        crate::manage::MAX_REPORT_BYTES / 1024,
        crate::manage::MAX_REPORTED_TOKENS
    );
    let mut responses = ResponsesBuilder::new().response(
        "200",
        ResponseBuilder::new()
            .description("One verdict per reported token, in order.")
            .content(
                "application/json",
                json_content(ArrayBuilder::new().items(verdict).into()),
            ),
    );
    for (status, what) in [
        ("400", "Not a JSON array of reported tokens."),
        (
            "401",
            "Not signed by a configured scanner key; nothing changed.",
        ),
        ("413", &too_large),
        ("503", "The key store failed; send the report again."),
    ] {
        responses = responses.response(
            status,
            ResponseBuilder::new()
                .description(what)
                .content("application/json", json_content(reference("Error"))),
        );
    }
    OperationBuilder::new()
        .summary(Some(
            "Leaked-key reports (GitHub secret scanning partner format); true positives are acted on",
        ))
        .tag("API keys")
        .parameter(header(
            "Github-Public-Key-Identifier",
            "The id of the scanner key that signed the body.",
        ))
        .parameter(header(
            "Github-Public-Key-Signature",
            "Base64 of the DER ECDSA P-256 / SHA-256 signature of the raw body.",
        ))
        .request_body(Some(
            RequestBodyBuilder::new()
                .content(
                    "application/json",
                    json_content(ArrayBuilder::new().items(reported).into()),
                )
                .required(Some(Required::True))
                .build(),
        ))
        .responses(responses.build())
        .build()
}

/// The document of the management routes mounted at `one_active` and `named`, the
/// named ones speaking `named_api` and, with `bearer`, open to keys with the
/// management scope.
pub(crate) fn management(
    one_active: Option<&str>,
    named: Option<&str>,
    named_api: NamedKeysApi,
    bearer: bool,
    secret_scanning: Option<&str>,
) -> OpenApi {
    let compact = named_api == NamedKeysApi::Compact;
    let ok = |status, about, schema: &str| (status, about, reference(schema));
    let list = |field: &str| -> RefOr<Schema> {
        object(
            &[(
                field,
                ArrayBuilder::new().items(reference("KeyView")).into(),
            )],
            &[field],
        )
        .into()
    };
    let mut paths = PathsBuilder::new();
    if let Some(path) = one_active {
        let item = PathItem::new(
            HttpMethod::Get,
            operation(
                Op {
                    summary: "The owner's active key, and keys in a rotation's grace period",
                    body: None,
                    ok: ok("200", "The active key.", "ActiveKey"),
                    errors: &["401", "404"],
                    usage_query: false,
                    bearer_too: false,
                },
                false,
            ),
        );
        let mut item = item;
        item.merge_operations(PathItem::new(
            HttpMethod::Post,
            operation(
                Op {
                    summary: "Mint the owner's one key (the raw key is in this answer only)",
                    body: Some(("NewKey", false)),
                    ok: ok("201", "Minted.", "MintedKey"),
                    errors: &["400", "401", "403", "409", "413", "422"],
                    usage_query: false,
                    bearer_too: false,
                },
                false,
            ),
        ));
        item.merge_operations(PathItem::new(
            HttpMethod::Delete,
            operation(
                Op {
                    summary: "Revoke the key the body names, every working key with no body, \
                              or with a bearer key that key itself",
                    body: Some(("KeyRef", false)),
                    ok: ("200", "Revoked.", list("revoked")),
                    errors: &["400", "401", "403", "404", "409", "413"],
                    usage_query: false,
                    bearer_too: true,
                },
                false,
            ),
        ));
        paths = paths.path(path, item).path(
            format!("{path}/rotate"),
            PathItem::new(
                HttpMethod::Post,
                operation(
                    Op {
                        summary: "Mint a successor to the active key; the old one works for the grace period",
                        body: Some(("Rotation", false)),
                        ok: ok("201", "The successor.", "MintedKey"),
                        errors: &["400", "401", "403", "404", "409", "413", "422"],
                        usage_query: false,
                        bearer_too: false,
                    },
                    false,
                ),
            ),
        );
        paths = paths.path(
            format!("{path}/usage"),
            PathItem::new(
                HttpMethod::Get,
                operation(
                    Op {
                        summary: "The active key's requests by hour or day",
                        body: None,
                        ok: ok("200", "Every bucket of the range.", "KeyUsage"),
                        errors: &["400", "401", "404", "422"],
                        usage_query: true,
                        bearer_too: false,
                    },
                    false,
                ),
            ),
        );
    }
    if let Some(path) = named {
        let wrapped = |field: &str, schema: RefOr<Schema>| -> RefOr<Schema> {
            object(&[(field, schema)], &[field]).into()
        };
        let (listed, minted, revoked) = if compact {
            (
                wrapped(
                    "keys",
                    ArrayBuilder::new().items(reference("CompactKey")).into(),
                ),
                wrapped("key", reference("CompactMintedKey")),
                wrapped(
                    "success",
                    ObjectBuilder::new().schema_type(Type::Boolean).into(),
                ),
            )
        } else {
            (list("keys"), reference("MintedKey"), reference("KeyView"))
        };
        let named_op =
            |summary, body, ok: (&'static str, &'static str, RefOr<Schema>), errors| Op {
                summary,
                body,
                ok,
                errors,
                usage_query: false,
                bearer_too: bearer,
            };
        let mut item = PathItem::new(
            HttpMethod::Get,
            operation(
                named_op(
                    if compact {
                        "The owner's working keys"
                    } else {
                        "The owner's keys (revoked ones for 7 days)"
                    },
                    None,
                    ("200", "The keys.", listed),
                    &["401", "403"],
                ),
                false,
            ),
        );
        item.merge_operations(PathItem::new(
            HttpMethod::Post,
            operation(
                named_op(
                    "Mint a named key (the raw key is in this answer only)",
                    Some(("NewKey", true)),
                    ("201", "Minted.", minted.clone()),
                    &["400", "401", "403", "409", "413", "422"],
                ),
                false,
            ),
        ));
        item.merge_operations(PathItem::new(
            HttpMethod::Delete,
            operation(
                named_op(
                    "Revoke the key the body names",
                    Some(("KeyRef", true)),
                    ("200", "Revoked.", revoked.clone()),
                    &["400", "401", "403", "404", "413", "422"],
                ),
                false,
            ),
        ));
        paths = paths
            .path(path, item)
            .path(
                format!("{path}/{{id}}"),
                PathItem::new(
                    HttpMethod::Delete,
                    operation(
                        named_op(
                            "Revoke exactly this key",
                            None,
                            ("200", "Revoked.", revoked),
                            &["401", "403", "404"],
                        ),
                        true,
                    ),
                ),
            )
            .path(
                format!("{path}/{{id}}/rotate"),
                PathItem::new(
                    HttpMethod::Post,
                    operation(
                        named_op(
                            "Mint a successor to this key; the old one works for the grace period",
                            Some(("Rotation", false)),
                            ("201", "The successor.", minted),
                            &["400", "401", "403", "404", "409", "413", "422"],
                        ),
                        true,
                    ),
                ),
            )
            .path(
                format!("{path}/{{id}}/usage"),
                PathItem::new(
                    HttpMethod::Get,
                    operation(
                        Op {
                            usage_query: true,
                            ..named_op(
                                "This key's requests by hour or day",
                                None,
                                ok("200", "Every bucket of the range.", "KeyUsage"),
                                &["400", "401", "403", "404", "422"],
                            )
                        },
                        true,
                    ),
                ),
            );
    }
    #[cfg(feature = "secret-scanning")]
    if let Some(path) = secret_scanning {
        paths = paths.path(path, PathItem::new(HttpMethod::Post, leak_reports()));
    }
    #[cfg(not(feature = "secret-scanning"))]
    let _ = secret_scanning;
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("API key management")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Key management for the owners of API keys (tower-api-key): mint, \
                     view, rotate, revoke and read usage, from a browser session.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(components(compact)))
        .build()
}
