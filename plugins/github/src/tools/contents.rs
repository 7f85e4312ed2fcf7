//! Files and directories of a repository, through the contents API.

use base64::Engine;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use toolhost_sdk::{Context, Reply, Result, ToolError, tool};

use crate::api::{self, Api};
use crate::format::{FILE_LIMIT, count, short_sha, truncate};
use crate::model::Content;

/// Bytes inspected for a NUL to call a file binary, as git does.
const BINARY_SNIFF: usize = 8000;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetFileContents {
    /// Repository owner: a user or organization login, e.g. `octocat`.
    pub owner: String,
    /// Repository name without the owner, e.g. `hello-world`.
    pub repo: String,
    /// Path of a file or directory from the repository root, e.g. `src/main.rs` or `docs`. Empty or `/` lists the root directory.
    #[serde(default)]
    pub path: String,
    /// Branch, tag or commit SHA to read from; omit for the default branch.
    #[serde(default, rename = "ref")]
    pub git_ref: Option<String>,
    /// First line to return (1-based), for reading a large file in parts; files only.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub start_line: Option<u32>,
    /// Last line to return (inclusive); files only.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub end_line: Option<u32>,
}

/// A file's decoded contents or a directory's entries.
#[derive(Debug, Serialize, JsonSchema)]
pub struct FileContents {
    /// `file`, `dir`, `symlink` or `submodule`.
    #[serde(rename = "type")]
    pub kind: String,
    pub path: String,
    /// Blob SHA of a file (tree SHA of a directory, when known).
    pub sha: Option<String>,
    /// Size in bytes (files).
    pub size: Option<u64>,
    /// The file's text, decoded from base64 as UTF-8; absent for binary or too-large files and for directories.
    pub content: Option<String>,
    /// The file is binary (it contains NUL bytes), so `content` is absent.
    pub binary: bool,
    /// `content` was cut to fit the answer.
    pub truncated: bool,
    /// Lines in the whole file (text files).
    pub total_lines: Option<u64>,
    /// First line included in `content` (1-based).
    pub start_line: Option<u64>,
    /// Last line included in `content`.
    pub end_line: Option<u64>,
    /// Directory entries (directories only).
    pub entries: Vec<Entry>,
    /// Where a symlink points.
    pub target: Option<String>,
    /// A submodule's repository URL.
    pub submodule_git_url: Option<String>,
    pub html_url: Option<String>,
    /// Raw download URL, for binary or large files.
    pub download_url: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Entry {
    pub name: String,
    pub path: String,
    /// `file`, `dir`, `symlink` or `submodule`.
    #[serde(rename = "type")]
    pub kind: String,
    pub size: u64,
    pub sha: String,
}

/// Get a file's text or a directory's listing from a GitHub repository.
///
/// For a file the answer is its text, already decoded from base64 (UTF-8);
/// binary files are reported but not shown, and text past 200 KB is
/// truncated: read long files in parts with `start_line`/`end_line`. For a
/// directory (or an empty `path` for the root) the answer lists each entry
/// with its type and size. `ref` reads from a branch, tag or commit other
/// than the default branch.
#[tool(
    read_only,
    idempotent,
    open_world,
    title = "Get file or directory contents"
)]
pub fn get_file_contents(cx: &Context, args: GetFileContents) -> Result<Reply<FileContents>> {
    let lines = LineRange::new(args.start_line, args.end_line)?;
    let api = Api::from_context(cx)?;
    let file_path = args.path.trim().trim_matches('/');
    let path = api::repo_path(
        &args.owner,
        &args.repo,
        &format!("/contents/{}", api::encoded(file_path)),
    )?;
    let git_ref = args
        .git_ref
        .as_deref()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let request = api.get(&path).query_opt("ref", git_ref);
    let value: Value = api::send(request)?.data;
    let repo = format!("{}/{}", args.owner.trim(), args.repo.trim());
    format_contents(&repo, file_path, value, lines)
}

/// Requested lines of a file, 1-based and inclusive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LineRange {
    start: Option<u32>,
    end: Option<u32>,
}

impl LineRange {
    pub fn new(start: Option<u32>, end: Option<u32>) -> Result<LineRange> {
        if let (Some(start), Some(end)) = (start, end)
            && end < start
        {
            return Err(ToolError::InvalidArguments(format!(
                "end_line {end} is before start_line {start}"
            )));
        }
        Ok(LineRange { start, end })
    }

    fn is_all(&self) -> bool {
        self.start.is_none() && self.end.is_none()
    }
}

/// Formats the contents API's answer: an array for a directory, an object
/// for a file, symlink or submodule.
pub fn format_contents(
    repo: &str,
    requested: &str,
    value: Value,
    lines: LineRange,
) -> Result<Reply<FileContents>> {
    if value.is_array() {
        let entries: Vec<Content> = serde_json::from_value(value).map_err(|e| {
            ToolError::Upstream(format!(
                "GitHub sent a directory listing that does not parse: {e}"
            ))
        })?;
        return Ok(format_directory(repo, requested, entries));
    }
    let item: Content = serde_json::from_value(value)
        .map_err(|e| ToolError::Upstream(format!("GitHub sent contents that do not parse: {e}")))?;
    Ok(match item.kind.as_str() {
        "symlink" => {
            let target = item.target.clone().unwrap_or_default();
            let text = format!("{} in {repo} is a symlink to {target}.", item.path);
            Reply::new(text, base(item, "symlink"))
        }
        "submodule" => {
            let url = item.submodule_git_url.clone().unwrap_or_default();
            let text = format!(
                "{} in {repo} is a submodule: {url} at commit {}.",
                item.path, item.sha
            );
            Reply::new(text, base(item, "submodule"))
        }
        _ => format_file(repo, item, lines),
    })
}

fn base(item: Content, kind: &str) -> FileContents {
    FileContents {
        kind: kind.to_string(),
        path: item.path,
        sha: Some(item.sha).filter(|s| !s.is_empty()),
        size: Some(item.size),
        content: None,
        binary: false,
        truncated: false,
        total_lines: None,
        start_line: None,
        end_line: None,
        entries: Vec::new(),
        target: item.target,
        submodule_git_url: item.submodule_git_url,
        html_url: item.html_url,
        download_url: item.download_url,
    }
}

fn format_directory(repo: &str, requested: &str, entries: Vec<Content>) -> Reply<FileContents> {
    let shown = if requested.is_empty() {
        "/ (root)"
    } else {
        requested
    };
    let entries: Vec<Entry> = entries
        .into_iter()
        .map(|e| Entry {
            name: e.name,
            path: e.path,
            kind: e.kind,
            size: e.size,
            sha: e.sha,
        })
        .collect();
    let mut text = format!(
        "Directory {shown} in {repo} ({}):",
        count(entries.len(), "entry", "entries")
    );
    for e in &entries {
        match e.kind.as_str() {
            "dir" => text.push_str(&format!("\ndir  {}/", e.path)),
            "file" => text.push_str(&format!("\nfile {} ({} bytes)", e.path, e.size)),
            other => text.push_str(&format!("\n{other} {}", e.path)),
        }
    }
    let data = FileContents {
        kind: "dir".into(),
        path: requested.to_string(),
        sha: None,
        size: None,
        content: None,
        binary: false,
        truncated: false,
        total_lines: None,
        start_line: None,
        end_line: None,
        entries,
        target: None,
        submodule_git_url: None,
        html_url: None,
        download_url: None,
    };
    Reply::new(text, data)
}

fn format_file(repo: &str, item: Content, lines: LineRange) -> Reply<FileContents> {
    let header = format!(
        "File {} in {repo} ({} bytes, blob {})",
        item.path,
        item.size,
        short_sha(&item.sha)
    );
    let encoded = item.content.clone().unwrap_or_default();
    let encoding = item.encoding.clone().unwrap_or_default();
    let mut data = base(item, "file");
    let bytes = match encoding.as_str() {
        "base64" => decode_base64(&encoded),
        // Files of 1–100 MB come without content ("none").
        _ if encoded.is_empty() => {
            let text = format!(
                "{header} is too large for the contents API, so its content is not included.{}",
                download_hint(&data)
            );
            return Reply::new(text, data);
        }
        _ => Some(encoded.into_bytes()),
    };
    let Some(bytes) = bytes else {
        let text = format!(
            "{header}: GitHub's base64 content could not be decoded.{}",
            download_hint(&data)
        );
        return Reply::new(text, data);
    };
    let sniff = &bytes[..bytes.len().min(BINARY_SNIFF)];
    if sniff.contains(&0) {
        data.binary = true;
        let text = format!(
            "{header} is a binary file; its content is not shown.{}",
            download_hint(&data)
        );
        return Reply::new(text, data);
    }
    let (full, lossy) = match String::from_utf8(bytes) {
        Ok(text) => (text, false),
        Err(err) => (String::from_utf8_lossy(err.as_bytes()).into_owned(), true),
    };
    let total_lines = full.lines().count() as u64;
    let (selected, first, last) = select_lines(&full, lines);
    let (content, truncated) = truncate(&selected, FILE_LIMIT);
    let mut text = header;
    text.push_str(", decoded from base64 as UTF-8 text");
    if lossy {
        text.push_str(" (invalid UTF-8 sequences were replaced with U+FFFD)");
    }
    if !lines.is_all() {
        text.push_str(&format!("; lines {first}–{last} of {total_lines}"));
    }
    if truncated {
        text.push_str(&format!(
            "; truncated to the first {} of {} bytes: read the rest with start_line/end_line",
            content.len(),
            selected.len()
        ));
    }
    text.push_str(":\n\n");
    text.push_str(&content);
    data.content = Some(content);
    data.truncated = truncated;
    data.total_lines = Some(total_lines);
    data.start_line = Some(first);
    data.end_line = Some(last);
    Reply::new(text, data)
}

fn download_hint(data: &FileContents) -> String {
    match &data.download_url {
        Some(url) => format!(" Raw file: {url}"),
        None => String::new(),
    }
}

/// The requested lines (1-based, inclusive, clamped to the file) and the
/// numbers of the first and last line returned.
fn select_lines(text: &str, range: LineRange) -> (String, u64, u64) {
    let total = text.lines().count() as u64;
    if range.is_all() {
        return (text.to_string(), 1.min(total), total);
    }
    let start = u64::from(range.start.unwrap_or(1)).max(1);
    let end = range.end.map_or(total, u64::from).min(total);
    if start > end {
        return (String::new(), start, end);
    }
    let selected: Vec<&str> = text
        .lines()
        .skip((start - 1) as usize)
        .take((end - start + 1) as usize)
        .collect();
    (selected.join("\n"), start, end)
}

/// GitHub wraps base64 at 60 columns with newlines; some payloads (the
/// OpenAPI examples among them) carry them as literal `\n`.
pub fn decode_base64(encoded: &str) -> Option<Vec<u8>> {
    let cleaned: String = encoded
        .replace("\\n", "")
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    engine.decode(cleaned).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Value {
        let text = match name {
            "file" => include_str!("../../testdata/contents_file.json"),
            "dir" => include_str!("../../testdata/contents_dir.json"),
            "symlink" => include_str!("../../testdata/contents_symlink.json"),
            _ => include_str!("../../testdata/contents_submodule.json"),
        };
        serde_json::from_str(text).expect("fixture")
    }

    fn file(content: &str) -> Value {
        let encoded = base64::engine::general_purpose::STANDARD.encode(content);
        // Wrapped as GitHub does.
        let wrapped: Vec<String> = encoded
            .as_bytes()
            .chunks(60)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        serde_json::json!({
            "type": "file", "encoding": "base64", "size": content.len(),
            "name": "lib.rs", "path": "src/lib.rs", "sha": "3d21ec53a331a6f037a91c368710b99387d012c1",
            "content": wrapped.join("\n"),
            "html_url": "https://github.com/o/r/blob/main/src/lib.rs",
            "download_url": "https://raw.githubusercontent.com/o/r/main/src/lib.rs"
        })
    }

    #[test]
    fn files_are_decoded_to_text() {
        let source = "fn main() {\n    println!(\"héllo\");\n}\n".repeat(20);
        let reply =
            format_contents("o/r", "src/lib.rs", file(&source), LineRange::default()).expect("ok");
        assert!(
            reply.text.starts_with(
                "File src/lib.rs in o/r (760 bytes, blob 3d21ec5), decoded from base64 as UTF-8 text:\n\nfn main() {"
            ),
            "{}",
            reply.text
        );
        assert_eq!(reply.data.content.as_deref(), Some(source.as_str()));
        assert_eq!(reply.data.total_lines, Some(60));
        assert!(!reply.data.binary && !reply.data.truncated);
    }

    #[test]
    fn line_ranges_cut_large_files() {
        let source: String = (1..=10).map(|i| format!("line {i}\n")).collect();
        let lines = LineRange::new(Some(3), Some(4)).expect("range");
        let reply = format_contents("o/r", "a.txt", file(&source), lines).expect("ok");
        assert_eq!(reply.data.content.as_deref(), Some("line 3\nline 4"));
        assert!(reply.text.contains("lines 3–4 of 10"), "{}", reply.text);
        let lines = LineRange::new(Some(9), None).expect("range");
        let reply = format_contents("o/r", "a.txt", file(&source), lines).expect("ok");
        assert_eq!(reply.data.content.as_deref(), Some("line 9\nline 10"));
        assert!(LineRange::new(Some(5), Some(2)).is_err());

        let big = "x".repeat(FILE_LIMIT + 10);
        let reply =
            format_contents("o/r", "big.txt", file(&big), LineRange::default()).expect("ok");
        assert!(reply.data.truncated);
        assert_eq!(
            reply.data.content.as_ref().map(String::len),
            Some(FILE_LIMIT)
        );
        assert!(reply.text.contains("start_line/end_line"));
    }

    #[test]
    fn binary_files_are_not_shown() {
        let mut value = file("");
        value["content"] = base64::engine::general_purpose::STANDARD
            .encode([0x89, b'P', b'N', b'G', 0, 0, 0, 13])
            .into();
        let reply = format_contents("o/r", "logo.png", value, LineRange::default()).expect("ok");
        assert!(reply.data.binary);
        assert!(reply.data.content.is_none());
        assert!(reply.text.contains("is a binary file"), "{}", reply.text);
        assert!(reply.text.contains("raw.githubusercontent.com"));
    }

    #[test]
    fn the_spec_example_file_decodes() {
        let reply = format_contents(
            "octokit/octokit.rb",
            "README.md",
            fixture("file"),
            LineRange::default(),
        )
        .expect("ok");
        let content = reply.data.content.expect("text");
        assert!(content.starts_with("# Yoga Bo"), "{content}");
        assert!(content.contains("A web app that leads you through a yoga session."));
        // The example's base64 is damaged at the start; that is said, not hidden.
        assert!(reply.text.contains("replaced with U+FFFD"));
    }

    #[test]
    fn directories_list_entries() {
        let reply = format_contents(
            "octokit/octokit.rb",
            "lib",
            fixture("dir"),
            LineRange::default(),
        )
        .expect("ok");
        assert_eq!(
            reply.text,
            "Directory lib in octokit/octokit.rb (2 entries):\nfile lib/octokit.rb (625 bytes)\ndir  lib/octokit/"
        );
        assert_eq!(reply.data.kind, "dir");
        assert_eq!(reply.data.entries.len(), 2);
        assert_eq!(reply.data.entries[1].kind, "dir");
    }

    #[test]
    fn symlinks_and_submodules_say_what_they_are() {
        let reply = format_contents(
            "o/r",
            "bin/some-symlink",
            fixture("symlink"),
            LineRange::default(),
        )
        .expect("ok");
        assert!(
            reply
                .text
                .contains("is a symlink to /path/to/symlink/target"),
            "{}",
            reply.text
        );
        assert_eq!(reply.data.kind, "symlink");
        let reply =
            format_contents("o/r", "git", fixture("submodule"), LineRange::default()).expect("ok");
        assert!(
            reply
                .text
                .contains("is a submodule: git://github.com/jquery/qunit.git"),
            "{}",
            reply.text
        );
    }

    #[test]
    fn base64_tolerates_wrapping() {
        assert_eq!(
            decode_base64("aGVs\nbG8=\n").as_deref(),
            Some(&b"hello"[..])
        );
        assert_eq!(decode_base64("aGVsbG8").as_deref(), Some(&b"hello"[..]));
        assert_eq!(decode_base64("aGVs\\nbG8=").as_deref(), Some(&b"hello"[..]));
        assert!(decode_base64("!!!").is_none());
    }
}
