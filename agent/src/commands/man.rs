//! `portscope man [PAGE]` and `portscope man --out DIR`: the manual pages in roff, made from
//! the same clap definitions as `--help` (clap_mangen), so they never disagree with it.

use std::io::Write;

use anyhow::Context;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};

/// A page that is not one of portscope's.
#[derive(Debug, thiserror::Error)]
#[error("there is no page `{0}`; the pages are: {1}")]
pub struct NoSuchPage(String, String);

pub fn run(args: ManArgs) -> anyhow::Result<()> {
    let command = built();
    if let Some(dir) = args.out {
        std::fs::create_dir_all(&dir).with_context(|| format!("cannot make {}", dir.display()))?;
        clap_mangen::generate_to(command, &dir)
            .with_context(|| format!("cannot write the pages into {}", dir.display()))?;
        return Ok(());
    }
    let page = match args.page {
        None => command,
        Some(name) => {
            find(&command, &name).ok_or_else(|| NoSuchPage(name, pages(&command).join(", ")))?
        }
    };
    let mut out = Vec::new();
    clap_mangen::Man::new(page).render(&mut out)?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&out)?;
    stdout.flush()?;
    Ok(())
}

/// The command with its subcommands' full names set (`portscope-why`), as the pages are named.
fn built() -> clap::Command {
    let mut command = Cli::command().disable_help_subcommand(true);
    command.build();
    command
}

/// The subcommand a page name (`why`, `peer-add`, `portscope-why`) names.
fn find(command: &clap::Command, name: &str) -> Option<clap::Command> {
    let name = name.strip_prefix("portscope-").unwrap_or(name);
    let mut parts = name.split('-');
    let mut found = command.find_subcommand(parts.next()?)?;
    for part in parts {
        found = found.find_subcommand(part)?;
    }
    Some(found.clone())
}

/// Every page's name after `portscope-`.
fn pages(command: &clap::Command) -> Vec<String> {
    fn walk(command: &clap::Command, prefix: &str, into: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
            let name = format!("{prefix}{}", sub.get_name());
            into.push(name.clone());
            walk(sub, &format!("{name}-"), into);
        }
    }
    let mut names = Vec::new();
    walk(command, "", &mut names);
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_found_by_their_names() {
        let command = built();
        assert_eq!(find(&command, "why").unwrap().get_name(), "why");
        assert_eq!(find(&command, "peer-add").unwrap().get_name(), "add");
        assert_eq!(find(&command, "portscope-who").unwrap().get_name(), "who");
        assert!(find(&command, "nope").is_none());
        assert!(pages(&command).contains(&"peer-remove".to_owned()));
    }
}
