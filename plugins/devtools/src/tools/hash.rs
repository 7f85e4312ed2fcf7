//! `hash`: message digests (MD5, SHA-1, SHA-2) of text or decoded bytes.

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use sha2::Digest;

use crate::tool::{Output, ToolError, ToolSpec, invalid, parse_args};

pub(crate) fn spec() -> ToolSpec {
    ToolSpec {
        name: "hash",
        title: "Hash text",
        description: "Compute the MD5, SHA-1, SHA-256, SHA-384 or SHA-512 digest of text (as UTF-8) \
            or of bytes given as hex or base64, returned as lowercase hex or base64. Use it for \
            checksums and cache keys; MD5 and SHA-1 are broken for security purposes.",
        input_schema: json!({
            "type": "object",
            "properties": {
                "input": {"type": "string", "description": "The data to hash."},
                "algorithm": {"type": "string", "enum": ["md5", "sha1", "sha256", "sha384", "sha512"], "default": "sha256", "description": "The digest algorithm."},
                "input_encoding": {"type": "string", "enum": ["utf8", "hex", "base64"], "default": "utf8", "description": "How to turn `input` into bytes: its UTF-8 encoding, or decode it as hex or standard/url-safe base64."},
                "output_encoding": {"type": "string", "enum": ["hex", "base64"], "default": "hex", "description": "How to write the digest."}
            },
            "required": ["input"],
            "additionalProperties": false
        }),
        output_schema: Some(json!({
            "type": "object",
            "properties": {
                "algorithm": {"type": "string"},
                "digest": {"type": "string"},
                "output_encoding": {"type": "string", "enum": ["hex", "base64"]},
                "input_bytes": {"type": "integer", "description": "How many bytes were hashed."}
            },
            "required": ["algorithm", "digest", "output_encoding", "input_bytes"]
        })),
        idempotent: true,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Args {
    input: String,
    #[serde(default)]
    algorithm: Algorithm,
    #[serde(default)]
    input_encoding: InputEncoding,
    #[serde(default)]
    output_encoding: OutputEncoding,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Algorithm {
    Md5,
    Sha1,
    #[default]
    Sha256,
    Sha384,
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Self::Md5 => "md5",
            Self::Sha1 => "sha1",
            Self::Sha256 => "sha256",
            Self::Sha384 => "sha384",
            Self::Sha512 => "sha512",
        }
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Md5 => md5::Md5::digest(data).to_vec(),
            Self::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Self::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Self::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Self::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum InputEncoding {
    #[default]
    Utf8,
    Hex,
    Base64,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum OutputEncoding {
    #[default]
    Hex,
    Base64,
}

pub(crate) fn run(arguments: &str) -> Result<Output, ToolError> {
    let args: Args = parse_args(arguments)?;
    let bytes = match args.input_encoding {
        InputEncoding::Utf8 => args.input.into_bytes(),
        InputEncoding::Hex => {
            let cleaned: String = args.input.chars().filter(|c| !c.is_whitespace()).collect();
            hex::decode(cleaned).map_err(|e| invalid(format!("`input` is not valid hex: {e}")))?
        }
        InputEncoding::Base64 => super::base64::decode_lenient(&args.input, None)
            .map_err(|e| invalid(format!("`input` is not valid base64: {e}")))?,
    };
    let digest = args.algorithm.digest(&bytes);
    let (encoded, encoding) = match args.output_encoding {
        OutputEncoding::Hex => (hex::encode(&digest), "hex"),
        OutputEncoding::Base64 => (
            base64::engine::general_purpose::STANDARD.encode(&digest),
            "base64",
        ),
    };
    Ok(Output::with_structured(
        encoded.clone(),
        json!({
            "algorithm": args.algorithm.name(),
            "digest": encoded,
            "output_encoding": encoding,
            "input_bytes": bytes.len(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use crate::registry::tests::{run_invalid, run_ok};
    use serde_json::json;

    #[test]
    fn known_digests() {
        let cases = [
            ("md5", "900150983cd24fb0d6963f7d28e17f72"),
            ("sha1", "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (
                "sha256",
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            ),
        ];
        for (algorithm, want) in cases {
            let out = run_ok("hash", json!({"input": "abc", "algorithm": algorithm}));
            assert_eq!(out.text, want, "{algorithm}");
        }
        let out = run_ok("hash", json!({"input": "abc", "algorithm": "sha512"}));
        assert!(out.text.starts_with("ddaf35a193617aba"));
        assert_eq!(out.text.len(), 128);
    }

    #[test]
    fn default_is_sha256_hex_and_base64_output_works() {
        let out = run_ok("hash", json!({"input": "", "output_encoding": "base64"}));
        assert_eq!(out.text, "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
        assert_eq!(out.structured.unwrap_or_default()["algorithm"], "sha256");
    }

    #[test]
    fn decodes_hex_and_base64_input() {
        let hex = run_ok(
            "hash",
            json!({"input": "61 62 63", "input_encoding": "hex", "algorithm": "md5"}),
        );
        let b64 = run_ok(
            "hash",
            json!({"input": "YWJj", "input_encoding": "base64", "algorithm": "md5"}),
        );
        assert_eq!(hex.text, "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(b64.text, hex.text);
    }

    #[test]
    fn rejects_bad_input_and_algorithm() {
        run_invalid("hash", json!({"input": "zz", "input_encoding": "hex"}));
        run_invalid("hash", json!({"input": "a", "algorithm": "crc32"}));
    }
}
