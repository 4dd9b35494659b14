//! The schemas of what the crate puts on the wire: the error envelope, key views,
//! usage, request bodies, and the components that name them.

use utoipa::openapi::{
    schema::{
        AllOfBuilder, ArrayBuilder, ComponentsBuilder, ObjectBuilder, Ref, Schema, SchemaFormat,
        SchemaType, Type,
    },
    security::{ApiKey, ApiKeyValue, SecurityScheme},
    Components, RefOr,
};

use super::{bearer_scheme, API_KEY_SCHEME, SESSION_SCHEME};

pub(super) fn string() -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String)
}

pub(super) fn time() -> ObjectBuilder {
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

pub(super) fn reference(name: &str) -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name(name))
}

pub(super) fn object(properties: &[(&str, RefOr<Schema>)], required: &[&str]) -> ObjectBuilder {
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
pub(super) fn error_schema() -> RefOr<Schema> {
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

pub(super) fn components(compact: bool) -> Components {
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
