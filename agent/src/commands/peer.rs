//! `portscope peer add NAME URL --fingerprint FP`, `portscope peer remove NAME` and
//! `portscope peer list`.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::Context;
use portscope_shared::{Host, HostStatus, Hosts};

use crate::cli::{PeerAction, PeerArgs};

/// Environment variable `peer add` reads the peer's token from (else the first line of stdin):
/// never the command line, which other users can read.
pub const TOKEN_ENV: &str = "PORTSCOPE_PEER_TOKEN";

pub async fn run(args: PeerArgs) -> anyhow::Result<std::process::ExitCode> {
    let path = match args.file {
        Some(path) => path,
        None => portscope_server::peers::config::default_path()
            .context("neither XDG_CONFIG_HOME nor HOME is set: give --file")?,
    };
    match args.action {
        PeerAction::Add {
            name,
            url,
            fingerprint,
            ca,
        } => {
            let token = token()?;
            portscope_server::peers::config::add(
                &path,
                portscope_server::peers::config::Entry {
                    name: name.clone(),
                    url,
                    token: Some(token),
                    token_file: None,
                    fingerprint,
                    ca,
                },
            )?;
            println!("added peer `{name}` to {}", path.display());
            Ok(std::process::ExitCode::SUCCESS)
        }
        PeerAction::Remove { name } => {
            portscope_server::peers::config::remove(&path, &name)?;
            println!("removed peer `{name}` from {}", path.display());
            Ok(std::process::ExitCode::SUCCESS)
        }
        PeerAction::List { json } => list(&path, json).await,
    }
}

/// The token from [`TOKEN_ENV`], else the first line of stdin.
fn token() -> anyhow::Result<String> {
    if let Some(token) = std::env::var_os(TOKEN_ENV) {
        return Ok(token
            .into_string()
            .map_err(|_| anyhow::anyhow!("{TOKEN_ENV} is not UTF-8"))?
            .trim()
            .to_owned());
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the token from stdin")?;
    let token = line.trim().to_owned();
    anyhow::ensure!(
        !token.is_empty(),
        "no token: give the peer's token on stdin or in {TOKEN_ENV} (never on the command line)"
    );
    Ok(token)
}

/// Connects to each peer once and says how it answered; exit status 1 when one is not live.
async fn list(path: &Path, json: bool) -> anyhow::Result<std::process::ExitCode> {
    let peers = portscope_server::peers::config::load(path)?;
    let mut hosts = Vec::new();
    for peer in &peers {
        let host = match portscope_server::peers::link::open(peer).await {
            Ok((_, hello)) => Host {
                name: peer.name.clone(),
                local: false,
                url: Some(peer.url()),
                status: HostStatus::Live,
                detail: None,
                hostname: Some(hello.hostname),
                agent_version: Some(hello.agent_version),
                last_live: Some(
                    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
                ),
                sockets: 0,
                can_kill: hello.can_kill,
            },
            Err(e) => Host {
                name: peer.name.clone(),
                local: false,
                url: Some(peer.url()),
                status: e.status(),
                detail: Some(e.to_string()),
                hostname: None,
                agent_version: None,
                last_live: None,
                sockets: 0,
                can_kill: false,
            },
        };
        hosts.push(host);
    }
    let all_live = hosts.iter().all(|h| h.status == HostStatus::Live);
    let mut out = std::io::stdout().lock();
    if json {
        serde_json::to_writer_pretty(&mut out, &Hosts { hosts })?;
        writeln!(out)?;
    } else if hosts.is_empty() {
        writeln!(out, "no peers in {}", path.display())?;
    } else {
        let mut table = tabwriter::TabWriter::new(&mut out);
        writeln!(table, "NAME\tURL\tSTATUS")?;
        for h in &hosts {
            let status = match (&h.detail, &h.hostname, &h.agent_version) {
                (Some(detail), ..) => detail.clone(),
                (None, Some(name), Some(version)) => format!("live ({name}, portscope {version})"),
                _ => "live".into(),
            };
            writeln!(
                table,
                "{}\t{}\t{}",
                h.name,
                h.url.as_deref().unwrap_or_default(),
                portscope_core::text::one_line(&status)
            )?;
        }
        table.flush()?;
    }
    Ok(if all_live {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}
