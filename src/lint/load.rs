//! Reading YAML the way a GitOps repository holds it: folders, multi-document files.

use std::path::{Path, PathBuf};

use super::Location;

/// One YAML document with its place.
#[derive(Clone, Debug)]
pub struct Document {
    /// Where it is.
    pub location: Location,
    /// Its content.
    pub value: serde_json::Value,
}

/// Input that cannot be read (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A path that cannot be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The path.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// A document that is not YAML.
    #[error("{location}: not valid YAML: {message}")]
    Yaml {
        /// Where.
        location: Location,
        /// The parser's message.
        message: String,
    },
}

/// Loads every `.yaml` / `.yml` file under the paths (folders recursively, hidden entries skipped),
/// in a stable order.
pub fn load_paths(paths: &[PathBuf]) -> Result<Vec<Document>, LoadError> {
    let mut files = Vec::new();
    for p in paths {
        collect(p, &mut files, true)?;
    }
    let mut docs = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).map_err(|source| LoadError::Io {
            path: f.display().to_string(),
            source,
        })?;
        docs.extend(split_documents(&f.display().to_string(), &text)?);
    }
    Ok(docs)
}

fn collect(path: &Path, out: &mut Vec<PathBuf>, explicit: bool) -> Result<(), LoadError> {
    let io = |source| LoadError::Io {
        path: path.display().to_string(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(io)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()
            .map_err(io)?;
        entries.sort();
        for e in entries {
            let hidden = e
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'));
            if !hidden {
                collect(&e, out, false)?;
            }
        }
    } else if explicit
        || matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        )
    {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Splits a file at `---` lines and parses each non-empty document.
pub fn split_documents(file: &str, text: &str) -> Result<Vec<Document>, LoadError> {
    let mut chunks: Vec<(usize, String)> = vec![(1, String::new())];
    for (i, line) in text.lines().enumerate() {
        if line == "---" || line.starts_with("--- ") {
            // Content after the marker on the same line belongs to the new document.
            let rest = line.trim_start_matches("---").trim_start();
            if rest.is_empty() {
                chunks.push((i + 2, String::new()));
            } else {
                chunks.push((i + 1, format!("{rest}\n")));
            }
        } else if let Some((_, buf)) = chunks.last_mut() {
            buf.push_str(line);
            buf.push('\n');
        }
    }
    let mut docs = Vec::new();
    let mut index = 0;
    for (line, chunk) in chunks {
        let blank = chunk
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'));
        if blank {
            continue;
        }
        index += 1;
        // The document starts at its first line with content, which is what an editor should jump to.
        let first = chunk
            .lines()
            .position(|l| !(l.trim().is_empty() || l.trim_start().starts_with('#')))
            .unwrap_or(0);
        let location = Location {
            file: file.to_string(),
            line: line + first,
            document: index,
        };
        let value: serde_json::Value =
            serde_saphyr::from_str(&chunk).map_err(|e| LoadError::Yaml {
                location: location.clone(),
                message: e.to_string(),
            })?;
        if !value.is_null() {
            docs.push(Document { location, value });
        }
    }
    Ok(docs)
}
