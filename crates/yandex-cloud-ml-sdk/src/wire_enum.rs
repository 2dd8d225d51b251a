//! One way to write a wire enum (the status of a dataset, a tuning or a batch task): the
//! variants are named after the protobuf enum's values, and from them come the conversions to
//! and from the wire number, the wire name (`IN_PROGRESS`), `Display`, `FromStr` (the wire name
//! in any letter case, or its dashed form `in-progress`) and serde (the wire name). A number
//! this SDK version does not know is kept as `Unknown(n)`, never lost.

/// `wire_enum!(#[doc] pub enum Name(prost::Enum, "what it is") { Variant, … })`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident($proto:ty, $what:literal) {
            $( $(#[$variant_meta:meta])* $variant:ident, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$variant_meta])* $variant, )*
            /// Not set, or unknown to this SDK version (its wire number).
            Unknown(i32),
        }

        impl $name {
            /// Every value this SDK version knows.
            pub const KNOWN: &'static [$name] = &[$($name::$variant),*];

            #[allow(dead_code)] // not every enum is read back from the wire
            pub(crate) fn from_proto(value: i32) -> $name {
                match <$proto>::try_from(value) {
                    $( Ok(<$proto>::$variant) => $name::$variant, )*
                    _ => $name::Unknown(value),
                }
            }

            #[allow(dead_code)] // not every enum is sent
            pub(crate) fn to_proto(self) -> i32 {
                match self {
                    $( $name::$variant => <$proto>::$variant as i32, )*
                    $name::Unknown(value) => value,
                }
            }

            /// The wire name, e.g. `IN_PROGRESS` (`UNKNOWN` for a number this version does
            /// not know).
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => <$proto>::$variant.as_str_name(), )*
                    $name::Unknown(_) => "UNKNOWN",
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::Error;

            /// The wire name (`IN_PROGRESS`) in any letter case, or its dashed form
            /// (`in-progress`).
            fn from_str(s: &str) -> $crate::error::Result<$name> {
                let wire = s.trim().to_ascii_uppercase().replace('-', "_");
                $name::KNOWN.iter().copied().find(|known| known.as_str() == wire).ok_or_else(|| {
                    let names: Vec<String> =
                        $name::KNOWN.iter().map(|k| k.as_str().to_ascii_lowercase().replace('_', "-")).collect();
                    $crate::error::Error::invalid_input(format!(
                        "unknown {} `{s}`: use {}",
                        $what,
                        names.join(", ")
                    ))
                })
            }
        }
    };
}

pub(crate) use wire_enum;

#[cfg(test)]
mod tests {
    use yandex_cloud_ml_proto::yandex::cloud::ai::batch_inference::v1::batch_inference_task::Status;

    wire_enum! {
        /// A test enum.
        pub enum Example(Status, "example status") {
            /// Created.
            Created,
            /// Running.
            InProgress,
        }
    }

    #[test]
    fn names_numbers_and_text_round_trip() {
        for known in Example::KNOWN {
            assert_eq!(Example::from_proto(known.to_proto()), *known);
            assert_eq!(known.to_string().parse::<Example>().unwrap(), *known);
        }
        assert_eq!(Example::InProgress.as_str(), "IN_PROGRESS");
        assert_eq!("in-progress".parse::<Example>().unwrap(), Example::InProgress);
        assert_eq!("In_Progress".parse::<Example>().unwrap(), Example::InProgress);
        assert_eq!(Example::from_proto(42), Example::Unknown(42));
        assert_eq!(Example::Unknown(42).to_proto(), 42);
        let e = "done".parse::<Example>().unwrap_err();
        assert_eq!(e.message(), "unknown example status `done`: use created, in-progress");
        assert_eq!(serde_json::to_string(&Example::InProgress).unwrap(), "\"IN_PROGRESS\"");
    }
}
