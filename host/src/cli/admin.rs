//! Operator commands that work on the data directory directly, without a
//! running server: minting tokens, registering clients, managing users.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

use crate::auth::{self, issuer};
use crate::config::{AuthMode, Config, Overrides};

/// Where the server's state is: the same flags `serve` takes.
#[derive(clap::Args)]
pub(super) struct StateArgs {
    /// TOML configuration file.
    #[arg(long, env = "TOOLHOST_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default: the configured one).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

impl StateArgs {
    fn load(&self) -> anyhow::Result<Config> {
        let overrides = Overrides {
            data_dir: self.data_dir.clone(),
            ..Overrides::default()
        };
        let config = Config::load(self.config.as_deref(), std::env::vars(), &overrides)?;
        if config.auth.mode != AuthMode::Embedded {
            anyhow::bail!(
                "auth.mode is not \"embedded\": tokens, clients and users belong to the external identity provider"
            );
        }
        Ok(config)
    }
}

#[derive(clap::Args)]
pub(super) struct TokenArgs {
    #[command(flatten)]
    state: StateArgs,
    /// The token's subject (a user or service name).
    #[arg(long)]
    sub: String,
    /// Space-separated scopes: `read`, `write`.
    #[arg(long, default_value = auth::SCOPES)]
    scope: String,
    /// Lifetime, such as `1h` or `15m`.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// The server's public URL, when it differs from the one the server
    /// last published in the data directory.
    #[arg(long)]
    url: Option<String>,
}

/// `toolhost token`: prints an access token signed with the server's key.
pub(super) fn token(args: TokenArgs) -> anyhow::Result<()> {
    let config = args.state.load()?;
    let dir = auth::auth_dir(&config.server.data_dir);
    let token = runtime()?.block_on(async {
        let state = std::sync::Arc::new(super::open_state(&config).await?);
        issuer::mint_offline(
            state,
            &dir,
            args.url.as_deref(),
            &args.sub,
            &args.scope,
            args.ttl,
            config.auth.key_rotation,
        )
        .await
    })?;
    println!("{token}");
    Ok(())
}

#[derive(clap::Subcommand)]
pub(super) enum ClientCommand {
    /// Register a confidential client for the client_credentials grant and
    /// print its id and secret (shown only this once).
    Add {
        #[command(flatten)]
        state: StateArgs,
        /// A name for the client, shown in the audit log.
        name: String,
        /// Scopes it may request.
        #[arg(long, default_value = auth::SCOPES)]
        scope: String,
    },
    /// List the registered clients, one per line: id, kind (operator or
    /// dynamic), scopes, created and last used (unix seconds), name.
    List {
        #[command(flatten)]
        state: StateArgs,
    },
}

pub(super) fn client(command: ClientCommand) -> anyhow::Result<()> {
    let runtime = runtime()?;
    let (state, name, scope) = match command {
        ClientCommand::List { state } => {
            let config = state.load()?;
            let clients = runtime.block_on(async {
                let state = super::open_state(&config).await?;
                anyhow::Ok(state.clients().await?)
            })?;
            for c in clients {
                let kind = if c.dynamic { "dynamic" } else { "operator" };
                let used = c.last_used.map_or("-".to_string(), |t| t.to_string());
                println!(
                    "{}\t{kind}\t{}\t{}\t{used}\t{}",
                    c.client_id,
                    c.scope,
                    c.created,
                    c.client_name.unwrap_or_default()
                );
            }
            return Ok(());
        }
        ClientCommand::Add { state, name, scope } => (state, name, scope),
    };
    let config = state.load()?;
    let (id, secret) = runtime.block_on(async {
        let state = super::open_state(&config).await?;
        issuer::add_client(&state, &name, &scope).await
    })?;
    println!("client_id={id}");
    println!("client_secret={secret}");
    eprintln!("Store the secret now: only its digest is kept.");
    Ok(())
}

#[derive(clap::Subcommand)]
pub(super) enum UserCommand {
    /// Add a user who can sign in at /authorize (or set a new password
    /// and groups). The password is read from standard input.
    Add {
        #[command(flatten)]
        state: StateArgs,
        name: String,
        /// Comma-separated groups, for access rules.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Replace a user's groups, keeping their password. Their next sign-in
    /// or refresh carries the new groups.
    Groups {
        #[command(flatten)]
        state: StateArgs,
        name: String,
        /// Comma-separated groups; none for no groups.
        #[arg(value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Remove a user: their refresh tokens and browser sessions stop working.
    Remove {
        #[command(flatten)]
        state: StateArgs,
        name: String,
    },
    /// List users and their groups.
    List {
        #[command(flatten)]
        state: StateArgs,
    },
}

pub(super) fn user(command: UserCommand) -> anyhow::Result<()> {
    let runtime = runtime()?;
    match command {
        UserCommand::Add {
            state,
            name,
            groups,
        } => {
            let config = state.load()?;
            eprint!("Password for {name}: ");
            let mut password = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut password)
                .context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\r', '\n']);
            if password.chars().count() < 8 {
                anyhow::bail!("passwords need at least 8 characters");
            }
            runtime.block_on(async {
                let state = super::open_state(&config).await?;
                issuer::users::upsert(&state, &name, password, groups).await?;
                anyhow::Ok(())
            })?;
            eprintln!();
            println!("user {name} saved");
        }
        UserCommand::Groups {
            state,
            name,
            groups,
        } => {
            let config = state.load()?;
            let found = runtime.block_on(async {
                let state = super::open_state(&config).await?;
                anyhow::Ok(state.set_user_groups(&name, &groups).await?)
            })?;
            anyhow::ensure!(found, "there is no user {name}");
            println!("user {name} is in groups: {}", groups.join(","));
        }
        UserCommand::Remove { state, name } => {
            let config = state.load()?;
            let found = runtime.block_on(async {
                let state = super::open_state(&config).await?;
                anyhow::Ok(state.remove_user(&name).await?)
            })?;
            anyhow::ensure!(found, "there is no user {name}");
            println!("user {name} removed");
        }
        UserCommand::List { state } => {
            let config = state.load()?;
            let users = runtime.block_on(async {
                let state = super::open_state(&config).await?;
                anyhow::Ok(state.users().await?)
            })?;
            for user in users {
                println!("{}\t{}", user.name, user.groups.join(","));
            }
        }
    }
    Ok(())
}

/// The admin commands work on the state database, whose API is async.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}
