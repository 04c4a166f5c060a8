//! Runtime templates (minijinja, HTML auto-escaped). The defaults are embedded in the binary;
//! a file of the same name in `<conf>/portal/templates/` replaces one (the directory is part
//! of the cluster's synchronized configuration). Files are read at each render, so an edit
//! takes effect at the next page without a restart; a template that does not compile falls
//! back to the embedded one with an error in the log, so a typo never takes the portal down.

use minijinja::Environment;
use std::path::{Path, PathBuf};

/// A set of named templates with embedded defaults.
#[derive(Debug, Clone)]
pub struct Templates {
    defaults: &'static [(&'static str, &'static str)],
    dir: PathBuf,
}

impl Templates {
    pub fn new(defaults: &'static [(&'static str, &'static str)], dir: &Path) -> Templates {
        Templates {
            defaults,
            dir: dir.to_path_buf(),
        }
    }

    fn sources(&self, use_overrides: bool) -> Vec<(&'static str, String)> {
        self.defaults
            .iter()
            .map(|(name, default)| {
                let over = use_overrides
                    .then(|| self.dir.join(name))
                    .filter(|p| !p.is_symlink())
                    .and_then(|p| std::fs::read_to_string(p).ok());
                (*name, over.unwrap_or_else(|| default.to_string()))
            })
            .collect()
    }

    fn try_render(
        &self,
        name: &str,
        ctx: &minijinja::Value,
        use_overrides: bool,
    ) -> Result<String, minijinja::Error> {
        let sources = self.sources(use_overrides);
        let mut env = Environment::new();
        for (n, src) in &sources {
            env.add_template(n, src)?;
        }
        env.get_template(name)?.render(ctx)
    }

    /// Renders `name` with `ctx`.
    pub fn render(&self, name: &str, ctx: minijinja::Value) -> String {
        match self.try_render(name, &ctx, true) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(template = name, dir = %self.dir.display(), error = %e, "template override failed: using the built-in template");
                self.try_render(name, &ctx, false)
                    .unwrap_or_else(|e| format!("template error: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULTS: &[(&str, &str)] = &[
        ("base.html", "<main>{% block body %}{% endblock %}</main>"),
        (
            "page.html",
            "{% extends \"base.html\" %}{% block body %}Hello {{ name }}{% endblock %}",
        ),
    ];

    #[test]
    fn defaults_escape_and_overrides_apply() {
        let dir = tempfile::tempdir().unwrap();
        let t = Templates::new(DEFAULTS, dir.path());
        let ctx = minijinja::context! { name => "<b>x</b>" };
        assert_eq!(
            t.render("page.html", ctx.clone()),
            "<main>Hello &lt;b&gt;x&lt;&#x2f;b&gt;</main>"
        );
        std::fs::write(
            dir.path().join("base.html"),
            "<div class=custom>{% block body %}{% endblock %}</div>",
        )
        .unwrap();
        assert_eq!(
            t.render("page.html", ctx.clone()),
            "<div class=custom>Hello &lt;b&gt;x&lt;&#x2f;b&gt;</div>"
        );
        // A broken override falls back to the built-in template.
        std::fs::write(dir.path().join("base.html"), "{% block body %}").unwrap();
        assert_eq!(
            t.render("page.html", ctx),
            "<main>Hello &lt;b&gt;x&lt;&#x2f;b&gt;</main>"
        );
    }
}
