//! Authentication rules: a source's attributes for a user → the role and the unregistration
//! date, by the first rule (in file order) whose conditions hold. No matching rule refuses.

use ironfence_config::authentication::{Access, Condition, Operator, Rule, SourceConf};
use std::collections::BTreeMap;

/// What a source knows about a user: attribute name (case-insensitive) → values (LDAP
/// attributes are multi-valued). Local users have `username`; guests `email` and `name`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attributes(BTreeMap<String, Vec<String>>);

impl Attributes {
    pub fn new() -> Attributes {
        Attributes::default()
    }

    pub fn insert(&mut self, name: &str, value: impl Into<String>) {
        self.0
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.into());
    }

    pub fn get(&self, name: &str) -> &[String] {
        self.0
            .get(&name.to_ascii_lowercase())
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// The registration a rule grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub rule: String,
    pub role: String,
    /// UNIX seconds.
    pub unregdate: i64,
}

/// Why nobody was granted access.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub source: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "no authentication rule of source {} matches this user: access refused",
            self.source
        )
    }
}

/// One condition against every value of its attribute: true if any value satisfies it
/// (`not_equals`: true if no value equals, as PacketFence compares the attribute as a whole).
pub fn condition_holds(c: &Condition, attrs: &Attributes) -> bool {
    let values = attrs.get(&c.attribute);
    match c.operator {
        Operator::NotEquals => !values.iter().any(|v| v.eq_ignore_ascii_case(&c.value)),
        Operator::Equals => values.iter().any(|v| v.eq_ignore_ascii_case(&c.value)),
        Operator::Contains => {
            let needle = c.value.to_lowercase();
            values.iter().any(|v| v.to_lowercase().contains(&needle))
        }
        Operator::Starts => {
            let needle = c.value.to_lowercase();
            values.iter().any(|v| v.to_lowercase().starts_with(&needle))
        }
        Operator::Ends => {
            let needle = c.value.to_lowercase();
            values.iter().any(|v| v.to_lowercase().ends_with(&needle))
        }
        // Checked at configuration load; an expression that does not compile matches nothing.
        Operator::Match => regex_lite::Regex::new(&c.value)
            .map(|re| values.iter().any(|v| re.is_match(v)))
            .unwrap_or(false),
    }
}

pub fn rule_matches(rule: &Rule, attrs: &Attributes) -> bool {
    if rule.conditions.is_empty() {
        return true;
    }
    if rule.match_all {
        rule.conditions.iter().all(|c| condition_holds(c, attrs))
    } else {
        rule.conditions.iter().any(|c| condition_holds(c, attrs))
    }
}

/// The first matching rule of `source` decides; `now` is UNIX seconds.
pub fn decide(source: &SourceConf, attrs: &Attributes, now: i64) -> Result<Grant, Refusal> {
    source
        .rules
        .iter()
        .find(|r| rule_matches(r, attrs))
        .map(|r| Grant {
            rule: r.name.clone(),
            role: r.role.clone(),
            unregdate: match r.access {
                Access::Duration(d) => now.saturating_add(d.as_secs() as i64),
                Access::UnregDate(t) => t,
            },
        })
        .ok_or_else(|| Refusal {
            source: source.id.clone(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ironfence_config::authentication::SourceKind;
    use std::time::Duration;

    fn rule(
        name: &str,
        all: bool,
        conds: &[(&str, Operator, &str)],
        role: &str,
        access: Access,
    ) -> Rule {
        Rule {
            name: name.into(),
            description: None,
            match_all: all,
            conditions: conds
                .iter()
                .map(|(a, o, v)| Condition {
                    attribute: a.to_string(),
                    operator: *o,
                    value: v.to_string(),
                })
                .collect(),
            role: role.into(),
            access,
            line: 1,
        }
    }

    fn source(rules: Vec<Rule>) -> SourceConf {
        SourceConf {
            id: "ldap1".into(),
            description: "LDAP".into(),
            kind: SourceKind::Null,
            rules,
        }
    }

    #[test]
    fn first_matching_rule_wins_and_access_becomes_unregdate() {
        let s = source(vec![
            rule(
                "staff",
                true,
                &[("memberOf", Operator::Contains, "cn=staff")],
                "default",
                Access::Duration(Duration::from_secs(86_400)),
            ),
            rule(
                "students",
                true,
                &[("memberOf", Operator::Contains, "cn=")],
                "guest",
                Access::UnregDate(2_000_000_000),
            ),
        ]);
        let mut a = Attributes::new();
        a.insert("memberof", "CN=Staff,ou=groups,dc=example,dc=org");
        a.insert("memberOf", "cn=students,ou=groups,dc=example,dc=org");
        let g = decide(&s, &a, 1_000).unwrap();
        assert_eq!(
            (g.rule.as_str(), g.role.as_str(), g.unregdate),
            ("staff", "default", 87_400)
        );
        let mut b = Attributes::new();
        b.insert("memberOf", "cn=students,ou=groups");
        let g = decide(&s, &b, 1_000).unwrap();
        assert_eq!((g.role.as_str(), g.unregdate), ("guest", 2_000_000_000));
        let err = decide(&s, &Attributes::new(), 1_000).unwrap_err();
        assert!(
            err.to_string()
                .contains("no authentication rule of source ldap1"),
            "{err}"
        );
    }

    #[test]
    fn operators() {
        let mut a = Attributes::new();
        a.insert("uid", "alice");
        a.insert("mail", "alice@example.org");
        let c = |attr: &str, op, v: &str| Condition {
            attribute: attr.into(),
            operator: op,
            value: v.into(),
        };
        assert!(condition_holds(&c("uid", Operator::Equals, "ALICE"), &a));
        assert!(!condition_holds(
            &c("uid", Operator::NotEquals, "alice"),
            &a
        ));
        assert!(condition_holds(&c("uid", Operator::NotEquals, "bob"), &a));
        assert!(condition_holds(
            &c("mail", Operator::Ends, "@example.org"),
            &a
        ));
        assert!(condition_holds(&c("mail", Operator::Starts, "alice@"), &a));
        assert!(!condition_holds(&c("mail", Operator::Starts, "bob"), &a));
        assert!(condition_holds(
            &c("mail", Operator::Match, r"^[a-z]+@example\.(org|com)$"),
            &a
        ));
        assert!(!condition_holds(&c("mail", Operator::Match, r"^bob"), &a));
        // A missing attribute satisfies nothing but not_equals.
        assert!(!condition_holds(&c("title", Operator::Contains, ""), &a));
        assert!(condition_holds(&c("title", Operator::NotEquals, "x"), &a));
    }

    #[test]
    fn match_any_and_catch_all() {
        let s = source(vec![
            rule(
                "any",
                false,
                &[
                    ("uid", Operator::Equals, "x"),
                    ("uid", Operator::Equals, "bob"),
                ],
                "gaming",
                Access::Duration(Duration::from_secs(60)),
            ),
            rule(
                "everyone",
                true,
                &[],
                "guest",
                Access::Duration(Duration::from_secs(3600)),
            ),
        ]);
        let mut a = Attributes::new();
        a.insert("uid", "bob");
        assert_eq!(decide(&s, &a, 0).unwrap().role, "gaming");
        let mut b = Attributes::new();
        b.insert("uid", "carol");
        assert_eq!(decide(&s, &b, 0).unwrap().role, "guest");
    }
}
