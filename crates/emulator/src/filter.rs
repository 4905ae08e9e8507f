//! The list `filter` query of the management APIs: `attr op value` terms joined with `and` / `or`,
//! e.g. `name sw "google" and isEnabled eq "true"`. Operators `eq`, `sw`, `ew`, `co` (IdP and
//! application specs). `and` binds tighter than `or`, as usual; values may be quoted with `"`.

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Equal.
    Eq,
    /// Starts with.
    Sw,
    /// Ends with.
    Ew,
    /// Contains.
    Co,
}

/// One `attr op value` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Term {
    /// Attribute name, e.g. `name`.
    pub attribute: String,
    /// Operator.
    pub op: Op,
    /// Value (unquoted).
    pub value: String,
}

impl Term {
    /// Whether `actual` satisfies the term, compared exactly.
    pub fn matches(&self, actual: &str) -> bool {
        self.matches_case(actual, false)
    }

    /// Whether `actual` satisfies the term; with `ignore_case` the comparison follows a
    /// case-insensitive database collation (the server's filters become SQL `=` / `LIKE`).
    pub fn matches_case(&self, actual: &str, ignore_case: bool) -> bool {
        let (actual, value) = if ignore_case {
            (actual.to_lowercase(), self.value.to_lowercase())
        } else {
            (actual.to_owned(), self.value.clone())
        };
        match self.op {
            Op::Eq => actual == value,
            Op::Sw => actual.starts_with(&value),
            Op::Ew => actual.ends_with(&value),
            Op::Co => actual.contains(&value),
        }
    }
}

/// A parsed filter in disjunctive normal form: any group matches when all of its terms match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// `or`-ed groups of `and`-ed terms.
    pub groups: Vec<Vec<Term>>,
}

impl Filter {
    /// Parses a filter; `Err` carries a description for the 400 body.
    pub fn parse(input: &str, allow_or: bool) -> Result<Self, String> {
        let tokens = tokenize(input)?;
        let mut groups = vec![Vec::new()];
        let mut i = 0;
        loop {
            let (Some(attr), Some(op), Some(value)) =
                (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2))
            else {
                return Err(format!(
                    "filter '{input}' must be in the form <attribute> <operation> <value>"
                ));
            };
            let op = match op.to_ascii_lowercase().as_str() {
                "eq" => Op::Eq,
                "sw" => Op::Sw,
                "ew" => Op::Ew,
                "co" => Op::Co,
                other => {
                    return Err(format!(
                        "filter operation '{other}' is not supported; use eq, sw, ew or co"
                    ))
                }
            };
            if let Some(group) = groups.last_mut() {
                group.push(Term {
                    attribute: attr.clone(),
                    op,
                    value: value.clone(),
                });
            }
            i += 3;
            match tokens.get(i).map(|t| t.to_ascii_lowercase()) {
                None => break,
                Some(j) if j == "and" => {}
                Some(j) if j == "or" && allow_or => groups.push(Vec::new()),
                Some(j) => {
                    return Err(format!(
                        "unexpected '{j}' in filter; terms are joined with 'and'"
                    ))
                }
            }
            i += 1;
        }
        Ok(Self { groups })
    }

    /// Attributes the filter mentions.
    pub fn attributes(&self) -> impl Iterator<Item = &str> {
        self.groups.iter().flatten().map(|t| t.attribute.as_str())
    }

    /// Whether an item matches; `get` returns the item's value of an attribute.
    pub fn matches(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.matches_case(get, false)
    }

    /// [`Filter::matches`] with a case-insensitive comparison when `ignore_case` is set.
    pub fn matches_case(&self, get: impl Fn(&str) -> Option<String>, ignore_case: bool) -> bool {
        self.groups.iter().any(|group| {
            group
                .iter()
                .all(|t| get(&t.attribute).is_some_and(|v| t.matches_case(&v, ignore_case)))
        })
    }
}

fn tokenize(input: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '"' {
            chars.next();
            let mut s = String::new();
            loop {
                match chars.next() {
                    Some('"') => break,
                    Some(ch) => s.push(ch),
                    None => return Err("unterminated quoted value in filter".to_owned()),
                }
            }
            tokens.push(s);
        } else {
            let mut s = String::new();
            while let Some(&ch) = chars.peek() {
                if ch.is_whitespace() {
                    break;
                }
                s.push(ch);
                chars.next();
            }
            tokens.push(s);
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(a, _)| *a == k)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn parses_and_matches_each_operator() {
        let item = [("name", "Google Workspace"), ("isEnabled", "true")];
        for (f, want) in [
            (r#"name eq "Google Workspace""#, true),
            (r#"name sw "Goo""#, true),
            (r#"name ew "space""#, true),
            (r#"name co "e W""#, true),
            (r#"name eq "google workspace""#, false),
            (r#"name sw Goo and isEnabled eq "true""#, true),
            (r#"name sw Goo and isEnabled eq "false""#, false),
        ] {
            let filter = Filter::parse(f, false).expect(f);
            assert_eq!(filter.matches(get(&item)), want, "{f}");
        }
    }

    #[test]
    fn or_only_where_allowed() {
        assert!(Filter::parse("name eq a or name eq b", false).is_err());
        let f = Filter::parse("name eq a or name eq b", true).expect("or");
        assert!(f.matches(get(&[("name", "b")])));
        assert!(!f.matches(get(&[("name", "c")])));
    }

    #[test]
    fn rejects_malformed_filters() {
        for f in [
            "name",
            "name eq",
            "name gt 1",
            r#"name eq "open"#,
            "name eq a and",
        ] {
            assert!(Filter::parse(f, true).is_err(), "{f}");
        }
    }

    #[test]
    fn case_follows_the_collation() {
        let cases = [
            (r#"name eq "google""#, "Google", true, true),
            (r#"name eq "google""#, "Google", false, false),
            (r#"name sw "GOO""#, "google-workspace", true, true),
            (r#"name ew "SPACE""#, "google-workspace", false, false),
            (r#"name co "OGLE""#, "Google", true, true),
            (r#"name eq "google""#, "Googles", true, false),
        ];
        for (filter, name, ignore_case, want) in cases {
            let f = Filter::parse(filter, false).expect("parse");
            assert_eq!(
                f.matches_case(get(&[("name", name)]), ignore_case),
                want,
                "{filter} on {name} (ignore case {ignore_case})"
            );
        }
    }

    #[test]
    fn unknown_attribute_does_not_match() {
        let f = Filter::parse("colour eq red", false).expect("parse");
        assert_eq!(f.attributes().collect::<Vec<_>>(), vec!["colour"]);
        assert!(!f.matches(get(&[("name", "red")])));
    }
}
