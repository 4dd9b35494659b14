//! Macros the crate's modules share.

/// Implements `serde::Serialize` and `serde::Deserialize` for types that travel as
/// their text form: written with `Display`, read with `FromStr` (whose error, through
/// its `Display`, becomes the deserializer's message).
macro_rules! serde_via_text {
    ($($t:ty),+ $(,)?) => {$(
        impl ::serde::Serialize for $t {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $t {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                let text: ::std::borrow::Cow<'de, str> =
                    ::serde::Deserialize::deserialize(deserializer)?;
                text.parse().map_err(::serde::de::Error::custom)
            }
        }
    )+};
}

pub(crate) use serde_via_text;

/// `get_ref`, `get_mut` and `into_inner` for a middleware service `Foo<S>` whose inner
/// service is the field `inner`; invoked inside its `impl<S> Foo<S>` block.
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}

pub(crate) use inner_service_accessors;

#[cfg(test)]
mod tests {
    use crate::{
        key::{ApiKey, KeyMode, KeyPrefix},
        policy::{OriginPattern, RateLimit, RoutePattern},
    };

    /// Each type's JSON is its text form as a string, and reads back; other text is an
    /// error carrying the parser's message.
    #[test]
    fn json_is_the_text_form() {
        fn round_trip<T>(text: &str)
        where
            T: serde::Serialize + serde::de::DeserializeOwned + std::str::FromStr + PartialEq,
            T::Err: std::fmt::Debug,
        {
            let value: T = text.parse().expect("parses");
            let json = serde_json::to_string(&value).expect("serializes");
            assert_eq!(json, format!("\"{text}\""));
            assert!(serde_json::from_str::<T>(&json).expect("reads back") == value);
            assert!(serde_json::from_str::<T>("\"not one\"").is_err());
            assert!(serde_json::from_str::<T>("17").is_err());
        }
        let key = ApiKey::generate(KeyMode::Test).expect("rng");
        round_trip::<KeyPrefix>(key.prefix().as_str());
        round_trip::<RateLimit>("100/10s");
        round_trip::<OriginPattern>("https://*.example.com:443");
        round_trip::<RoutePattern>("GET /a/*");
    }
}
