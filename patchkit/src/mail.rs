//! The mail header of a `git format-patch` file: author, date, subject and message.
//!
//! Enough of RFC 2822/2047 to read what `git format-patch` writes: folded header
//! lines, quoted display names and `=?UTF-8?q?...?=` encoded words.

/// The commit a patch file describes, as its header states it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Author name from `From:`, decoded and unquoted.
    pub author_name: String,
    /// Author e-mail address from `From:`.
    pub author_email: String,
    /// `Date:` as written (RFC 2822, which git accepts back), if present.
    pub date: Option<String>,
    /// `Subject:` without its `[PATCH ...]` prefix, decoded.
    pub subject: String,
    /// The message body between the header and the `---` line that precedes
    /// the diffstat, without surrounding blank lines. Empty when there is none.
    pub body: String,
}

impl Header {
    /// Reads the header of a patch file. The error says which part is missing.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut lines = text.lines().peekable();
        if lines.peek().is_some_and(|l| l.starts_with("From ")) {
            lines.next();
        }
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in lines.by_ref() {
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                match fields.last_mut() {
                    Some((_, value)) => value.push_str(line),
                    None => return Err("header starts with a continuation line".into()),
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((
                    key.trim().to_ascii_lowercase(),
                    value.trim_start().to_string(),
                ));
            } else {
                return Err(format!("malformed header line `{line}`"));
            }
        }
        let field = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let from = field("from").ok_or("no `From:` header")?;
        let (author_name, author_email) = parse_address(from)?;
        let subject = field("subject").ok_or("no `Subject:` header")?;
        let body: Vec<&str> = lines.collect();
        Ok(Self {
            author_name,
            author_email,
            date: field("date").map(str::to_string),
            subject: strip_patch_prefix(&decode_words(subject)).to_string(),
            body: message_body(&body),
        })
    }

    /// The commit message: the subject, then a blank line and the body when there is one.
    pub fn message(&self) -> String {
        if self.body.is_empty() {
            format!("{}\n", self.subject)
        } else {
            format!("{}\n\n{}\n", self.subject, self.body)
        }
    }

    /// The message's git trailers: the `Key: value` lines of the body's last paragraph, in
    /// order, when every line of that paragraph is one (a line starting with whitespace
    /// continues the one before it, joined with a space). Keys are words of ASCII letters,
    /// digits and `-` (`Provides`, `Signed-off-by`); a paragraph with any other line (such as
    /// `Upstream status: ...`, whose key has a space) holds no trailers. A body of one
    /// paragraph counts, since the subject is not part of the body.
    pub fn trailers(&self) -> Vec<(String, String)> {
        let last = self
            .body
            .rsplit("\n\n")
            .next()
            .unwrap_or_default()
            .trim_matches('\n');
        let mut out: Vec<(String, String)> = Vec::new();
        for line in last.lines() {
            if line.starts_with([' ', '\t']) {
                match out.last_mut() {
                    Some((_, value)) => {
                        value.push(' ');
                        value.push_str(line.trim());
                    }
                    None => return Vec::new(),
                }
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                return Vec::new();
            };
            let is_token =
                !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
            if !is_token {
                return Vec::new();
            }
            out.push((key.to_string(), value.trim().to_string()));
        }
        out
    }

    /// The values of the trailers whose key is `key` (compared ignoring ASCII case), in order:
    /// `trailer_values("Provides")` lists the capabilities a patch declares.
    pub fn trailer_values(&self, key: &str) -> Vec<String> {
        self.trailers()
            .into_iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
            .collect()
    }
}

/// Removes a leading `[PATCH]`, `[PATCH 2/5]`, `[PATCH v2]`, ... tag.
pub fn strip_patch_prefix(subject: &str) -> &str {
    match subject
        .strip_prefix('[')
        .and_then(|rest| rest.split_once("] "))
    {
        Some((tag, rest)) if tag.contains("PATCH") => rest,
        _ => subject,
    }
}

/// The message lines: everything up to the last `---` line before the first
/// diff (so a `---` inside the message survives), blank lines trimmed.
fn message_body(lines: &[&str]) -> String {
    let diff = lines
        .iter()
        .position(|l| l.starts_with("diff --git "))
        .unwrap_or(lines.len());
    let end = lines[..diff]
        .iter()
        .rposition(|l| *l == "---")
        .unwrap_or(diff);
    let body = &lines[..end];
    let first = body
        .iter()
        .position(|l| !l.trim().is_empty())
        .unwrap_or(body.len());
    let last = body
        .iter()
        .rposition(|l| !l.trim().is_empty())
        .map_or(first, |i| i + 1);
    body[first..last].join("\n")
}

/// Splits `Name <email>` into its decoded, unquoted name and the address.
fn parse_address(value: &str) -> Result<(String, String), String> {
    let value = value.trim();
    let (name, rest) = value
        .rsplit_once('<')
        .ok_or_else(|| format!("`From: {value}` has no <address>"))?;
    let email = rest
        .strip_suffix('>')
        .ok_or_else(|| format!("`From: {value}` has no closing `>`"))?;
    let name = decode_words(name.trim());
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(quoted) => unescape(quoted),
        None => name,
    };
    Ok((name, email.trim().to_string()))
}

fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' {
            chars.next().unwrap_or('\\')
        } else {
            c
        });
    }
    out
}

/// Decodes RFC 2047 `=?charset?q?...?=` words (git writes UTF-8, Q encoding);
/// whitespace between two encoded words is dropped, as the RFC says. Words in
/// other encodings are left as they are.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut pending_space = String::new();
    let mut last_was_word = false;
    for token in split_keeping_spaces(value) {
        if token.trim().is_empty() {
            pending_space.push_str(token);
            continue;
        }
        match decode_q_word(token) {
            Some(decoded) => {
                if !last_was_word {
                    out.push_str(&pending_space);
                }
                out.push_str(&decoded);
                last_was_word = true;
            }
            None => {
                out.push_str(&pending_space);
                out.push_str(token);
                last_was_word = false;
            }
        }
        pending_space.clear();
    }
    out.push_str(&pending_space);
    out
}

/// Splits into alternating runs of whitespace and non-whitespace.
fn split_keeping_spaces(value: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut in_space = None;
    for (i, c) in value.char_indices() {
        let space = c.is_whitespace();
        if in_space.is_some_and(|s| s != space) {
            out.push(&value[start..i]);
            start = i;
        }
        in_space = Some(space);
    }
    if start < value.len() {
        out.push(&value[start..]);
    }
    out
}

fn decode_q_word(token: &str) -> Option<String> {
    let inner = token.strip_prefix("=?")?.strip_suffix("?=")?;
    let mut parts = inner.splitn(3, '?');
    let (_charset, encoding, text) = (parts.next()?, parts.next()?, parts.next()?);
    if !encoding.eq_ignore_ascii_case("q") {
        return None;
    }
    let mut bytes = Vec::with_capacity(text.len());
    let mut rest = text.as_bytes();
    while let Some((&b, tail)) = rest.split_first() {
        match b {
            b'_' => bytes.push(b' '),
            b'=' => {
                let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
                bytes.push(u8::from_str_radix(hex, 16).ok()?);
                rest = &tail[2..];
                continue;
            }
            _ => bytes.push(b),
        }
        rest = tail;
    }
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: &str = "From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\n\
        From: \"A. Dev, Jr\" <a@x>\n\
        Date: Wed, 25 Nov 2026 03:35:06 +0000\n\
        Subject: [PATCH] qwen3next: a very long subject line that goes on and on and\n \
        on beyond seventy eight columns\n\
        \n\
        Body line 1\n\
        ---\n\
        kept\n\
        \n\
        ---\n \
        a | 1 +\n \
        1 file changed, 1 insertion(+)\n\
        \n\
        diff --git a/a b/a\n";

    #[test]
    fn reads_folded_subject_quoted_name_and_body_with_dashes() {
        let h = Header::parse(PLAIN).unwrap();
        assert_eq!(h.author_name, "A. Dev, Jr");
        assert_eq!(h.author_email, "a@x");
        assert_eq!(h.date.as_deref(), Some("Wed, 25 Nov 2026 03:35:06 +0000"));
        assert_eq!(
            h.subject,
            "qwen3next: a very long subject line that goes on and on and on beyond seventy eight columns"
        );
        assert_eq!(h.body, "Body line 1\n---\nkept");
        assert!(h.message().starts_with("qwen3next: a very long"));
        assert!(h.message().ends_with("\n\nBody line 1\n---\nkept\n"));
    }

    #[test]
    fn decodes_encoded_words() {
        let text = "From: =?UTF-8?q?J=C3=BCrgen=20M=C3=BCller?= <j@x>\n\
            Subject: [PATCH 2/3] =?UTF-8?q?=C3=9Cber=20alles?=\n =?UTF-8?q?=20with_a_tail?= end\n\
            \n\
            ---\n";
        let h = Header::parse(text).unwrap();
        assert_eq!(h.author_name, "Jürgen Müller");
        assert_eq!(h.subject, "Über alles with a tail end");
        assert_eq!(h.body, "");
        assert_eq!(h.message(), "Über alles with a tail end\n");
    }

    fn with_body(body: &str) -> Header {
        Header::parse(&format!(
            "From: A <a@x>\nSubject: [PATCH] s\n\n{body}\n---\n a | 1 +\n\ndiff --git a/a b/a\n"
        ))
        .unwrap()
    }

    #[test]
    fn reads_trailers_of_the_last_paragraph() {
        let h = with_body(
            "What and why.\n\nUpstream status: not submitted.\n\n\
             Provides: gdn-state-in-place\nSigned-off-by: A <a@x>\nprovides: second\n  continued",
        );
        assert_eq!(
            h.trailers(),
            vec![
                ("Provides".to_string(), "gdn-state-in-place".to_string()),
                ("Signed-off-by".to_string(), "A <a@x>".to_string()),
                ("provides".to_string(), "second continued".to_string()),
            ]
        );
        assert_eq!(
            h.trailer_values("PROVIDES"),
            vec!["gdn-state-in-place", "second continued"]
        );
        assert!(h.trailer_values("Acked-by").is_empty());
    }

    #[test]
    fn a_paragraph_with_prose_holds_no_trailers() {
        // the key has a space: prose, not a trailer
        assert!(
            with_body("Text.\n\nUpstream status: not submitted.")
                .trailers()
                .is_empty()
        );
        // one line that is not `Key: value` spoils the paragraph
        assert!(
            with_body("Text.\n\nProvides: x\nand some words")
                .trailers()
                .is_empty()
        );
        // trailers must be in the last paragraph
        assert!(
            with_body("Provides: x\n\nUpstream status: not submitted.")
                .trailers()
                .is_empty()
        );
        // a continuation line cannot come first
        assert!(with_body("Text.\n\n  Provides: x").trailers().is_empty());
        assert!(with_body("").trailers().is_empty());
    }

    #[test]
    fn a_body_of_trailers_only_counts() {
        let h = with_body("Provides: a\nProvides: b");
        assert_eq!(h.trailer_values("Provides"), vec!["a", "b"]);
        // the message round trip keeps them
        assert!(h.message().ends_with("\n\nProvides: a\nProvides: b\n"));
    }

    #[test]
    fn missing_from_is_an_error() {
        let err = Header::parse("Subject: x\n\n").unwrap_err();
        assert!(err.contains("From"), "{err}");
    }
}
