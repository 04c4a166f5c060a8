//! `roles.conf`: the roles (PacketFence "categories") a node can have.

use crate::diag::FileDiags;
use crate::ini::Document;
use crate::value::suggestion;

/// One role. Switches map it to a VLAN with a `<name>Vlan` key in switches.conf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    pub name: String,
    pub notes: Option<String>,
    /// Maximum number of registered nodes per owner (pid) in this role; `0` = unlimited
    /// (PacketFence's convention).
    pub max_nodes_per_pid: u32,
}

/// The roles known to ironfence: PacketFence's built-in roles (`default`, `guest`, `gaming`,
/// `voice`, `REJECT`) overlaid by roles.conf, in that order, as PacketFence's `roles.conf.defaults`
/// is overlaid by `roles.conf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolesConf {
    roles: Vec<Role>,
}

/// PacketFence's built-in roles and their notes.
pub const BUILTIN_ROLES: &[(&str, &str)] = &[
    ("default", "Placeholder role/category, feel free to edit"),
    ("guest", "Guests"),
    ("gaming", "Gaming devices"),
    ("voice", "VoIP devices"),
    ("REJECT", "Reject role (Used to block access)"),
];

const KNOWN_KEYS: &[&str] = &["notes", "max_nodes_per_pid"];
/// PacketFence role keys ironfence accepts and does not use yet.
const PF_ONLY_KEYS: &[&str] = &[
    "parent_id",
    "include_parent_acls",
    "fingerbank_dynamic_access_list",
    "acls",
    "inherit_vlan",
    "inherit_role",
    "inherit_web_auth_url",
];

/// Whether `key` means something in a roles.conf section; otherwise why. checkup only warns;
/// admin tools refuse unknown keys.
pub fn check_key(key: &str) -> Result<(), String> {
    if KNOWN_KEYS.contains(&key) || PF_ONLY_KEYS.contains(&key) {
        Ok(())
    } else {
        Err(format!(
            "unknown roles.conf key {key}{} (known: notes, max_nodes_per_pid)",
            suggestion(key, KNOWN_KEYS.iter().copied())
        ))
    }
}

impl Default for RolesConf {
    fn default() -> Self {
        RolesConf {
            roles: BUILTIN_ROLES
                .iter()
                .map(|(name, notes)| Role {
                    name: name.to_string(),
                    notes: Some(notes.to_string()),
                    max_nodes_per_pid: 0,
                })
                .collect(),
        }
    }
}

impl RolesConf {
    pub fn roles(&self) -> &[Role] {
        &self.roles
    }

    pub fn get(&self, name: &str) -> Option<&Role> {
        self.roles.iter().find(|r| r.name == name)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.roles.iter().map(|r| r.name.as_str())
    }

    pub(crate) fn from_document(doc: Option<&Document>, d: &mut FileDiags<'_>) -> RolesConf {
        let mut conf = RolesConf::default();
        let Some(doc) = doc else { return conf };
        for (name, line) in doc.sections() {
            let section = doc.section(name).expect("listed section");
            let sec = Some(name);
            if name.contains(char::is_whitespace) {
                d.error(
                    Some(line),
                    sec,
                    format!("role name {name:?} contains spaces: switches.conf could not map it with a <role>Vlan key; rename the section"),
                );
                continue;
            }
            let mut role = conf.get(name).cloned().unwrap_or(Role {
                name: name.to_string(),
                notes: None,
                max_nodes_per_pid: 0,
            });
            for (key, entry) in section.entries() {
                let at = Some(entry.line);
                match key {
                    "notes" => role.notes = Some(entry.value.clone()).filter(|v| !v.is_empty()),
                    "max_nodes_per_pid" => match entry.value.parse::<u32>() {
                        Ok(n) => role.max_nodes_per_pid = n,
                        Err(_) if entry.value.is_empty() => {}
                        Err(_) => d.error(
                            at,
                            sec,
                            format!("max_nodes_per_pid {:?} is not a whole number: write a number of nodes (0 = unlimited)", entry.value),
                        ),
                    },
                    k if PF_ONLY_KEYS.contains(&k) => {}
                    k => d.warning(
                        at,
                        sec,
                        format!(
                            "unknown key {k}{}: remove it (known keys: notes, max_nodes_per_pid)",
                            suggestion(k, KNOWN_KEYS.iter().copied())
                        ),
                    ),
                }
            }
            match conf.roles.iter_mut().find(|r| r.name == name) {
                Some(existing) => *existing = role,
                None => conf.roles.push(role),
            }
        }
        conf
    }
}
