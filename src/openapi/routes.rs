//! The management routes as paths and operations, at their configured paths, in the
//! format the named routes speak.

use utoipa::openapi::{
    path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem},
    request_body::RequestBodyBuilder,
    response::{ResponseBuilder, ResponsesBuilder},
    schema::{ArrayBuilder, ObjectBuilder, Schema, Type},
    security::SecurityRequirement,
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr, Required,
};

use super::{
    schemas::{components, object, reference, string, time},
    API_KEY_SCHEME, SESSION_SCHEME,
};
use crate::manage::NamedKeysApi;

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

/// `responses` with an envelope answer (`Error`) for each status and description.
fn with_errors<'a>(
    mut responses: ResponsesBuilder,
    errors: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> ResponsesBuilder {
    for (status, what) in errors {
        responses = responses.response(
            status,
            ResponseBuilder::new()
                .description(what)
                .content("application/json", json_content(reference("Error"))),
        );
    }
    responses
}

fn operation(op: Op, id_in_path: bool) -> utoipa::openapi::path::Operation {
    let responses = ResponsesBuilder::new().response(
        op.ok.0,
        ResponseBuilder::new()
            .description(op.ok.1)
            .content("application/json", json_content(op.ok.2)),
    );
    let errors = op.errors.iter().map(|status| {
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
        (*status, what)
    });
    let responses = with_errors(responses, errors);
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
    let responses = ResponsesBuilder::new().response(
        "200",
        ResponseBuilder::new()
            .description("One verdict per reported token, in order.")
            .content(
                "application/json",
                json_content(ArrayBuilder::new().items(verdict).into()),
            ),
    );
    let errors = [
        ("400", "Not a JSON array of reported tokens."),
        (
            "401",
            "Not signed by a configured scanner key; nothing changed.",
        ),
        ("413", &too_large),
        ("503", "The key store failed; send the report again."),
    ];
    let responses = with_errors(responses, errors.iter().map(|(s, w)| (*s, *w)));
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
