//! One module per tool; each exposes `spec()` with its definition and runner.

pub(crate) mod base64;
pub(crate) mod hash;
pub(crate) mod json_format;
pub(crate) mod json_query;
pub(crate) mod jwt_decode;
pub(crate) mod regex_test;
pub(crate) mod text_diff;
pub(crate) mod time_convert;
pub(crate) mod url;
pub(crate) mod uuid;
pub(crate) mod whoami;
