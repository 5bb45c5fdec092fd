//! `palisade user …`: create an account (an admin, typically) and handle accounts
//! without the HTTP API: list, disable, enable, unlock, reset 2FA, set a plan.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use comfy_table::Table;
use palisade::app::Services;
use palisade_auth::permissions::Role;
use palisade_service::billing::BillingError;
use palisade_service::identity::admin::UserPatch;
use palisade_service::identity::{Identity, IdentityError, Provenance};
use palisade_service::page::Limit;
use palisade_store::repo::users::User;

use crate::cli_context::{self, CliContext};

#[derive(Args)]
pub struct UserArgs {
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Create an account. The password is read without echo, or from stdin when it is
    /// not a terminal.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// admin, manager or member; repeat for several.
        #[arg(long = "role", default_value = "member")]
        roles: Vec<String>,
    },
    /// List accounts.
    List,
    /// Disable an account and end its sessions.
    Disable {
        #[arg(long)]
        email: String,
    },
    /// Enable a disabled account.
    Enable {
        #[arg(long)]
        email: String,
    },
    /// Lift a lockout.
    Unlock {
        #[arg(long)]
        email: String,
    },
    /// Turn 2FA off (a lost device) and end the account's sessions.
    #[command(name = "reset-2fa")]
    Reset2fa {
        #[arg(long)]
        email: String,
    },
    /// Put an account on a plan (support: a comped or corrected plan); it holds until
    /// Stripe next reports on the account's subscription.
    #[command(name = "set-plan")]
    SetPlan {
        #[arg(long)]
        email: String,
        /// A plan id of PALISADE_BILLING_PLANS.
        #[arg(long)]
        plan: String,
    },
}

pub fn run(args: UserArgs, config_file: Option<&Path>) -> ExitCode {
    let ctx = match cli_context::open(config_file) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let CliContext {
        runtime, services, ..
    } = ctx;
    let from = Provenance {
        user_agent: Some("palisade-cli".into()),
        ..Provenance::default()
    };
    let result = runtime.block_on(act(&services, args.action, &from));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn act(services: &Services, action: Action, from: &Provenance) -> Result<(), String> {
    let identity = &services.identity;
    match action {
        Action::Create { email, name, roles } => {
            let roles = roles
                .iter()
                .map(|r| r.parse::<Role>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| e.to_string())?;
            let password = read_password()?;
            let view = identity
                .create_account(&email, &password, &name, &roles, from)
                .await
                .map_err(describe)?;
            println!(
                "created {} ({}) with roles {}",
                view.email,
                view.id,
                names(&view.roles, ", ")
            );
            Ok(())
        }
        Action::List => {
            let mut table = Table::new();
            table.load_style(comfy_table::presets::UTF8_FULL_CONDENSED);
            table.set_header(["id", "email", "name", "roles", "2fa", "disabled", "created"]);
            let mut after = None;
            let limit = Limit::try_from(Limit::MAX).map_err(|e| e.to_string())?;
            loop {
                let page = identity
                    .list_users(after.as_ref(), limit)
                    .await
                    .map_err(describe)?;
                for u in &page.items {
                    table.add_row([
                        u.id.to_string(),
                        u.email.clone(),
                        u.name.clone(),
                        names(&u.roles, ","),
                        u.two_factor.to_string(),
                        u.disabled.to_string(),
                        u.created_at.to_string(),
                    ]);
                }
                match page.next {
                    Some(n) => after = Some(n),
                    None => break,
                }
            }
            println!("{table}");
            Ok(())
        }
        Action::Disable { email } => {
            let patch = UserPatch {
                disabled: Some(true),
                ..Default::default()
            };
            let u = apply(identity, &email, patch, from).await?;
            println!("disabled {}; its sessions are ended", u.email);
            Ok(())
        }
        Action::Enable { email } => {
            let patch = UserPatch {
                disabled: Some(false),
                ..Default::default()
            };
            let u = apply(identity, &email, patch, from).await?;
            println!("enabled {}", u.email);
            Ok(())
        }
        Action::Unlock { email } => {
            let patch = UserPatch {
                unlock: true,
                ..Default::default()
            };
            let u = apply(identity, &email, patch, from).await?;
            println!("unlocked {}", u.email);
            Ok(())
        }
        Action::Reset2fa { email } => {
            let u = find(identity, &email).await?;
            identity.reset_2fa(u.id, from).await.map_err(describe)?;
            println!("2FA is off for {}; its sessions are ended", u.email);
            Ok(())
        }
        Action::SetPlan { email, plan } => {
            let u = find(identity, &email).await?;
            let view = services
                .billing
                .set_plan(from, None, u.id, &plan)
                .await
                .map_err(|e| match e {
                    BillingError::UnknownPlan => {
                        let known: Vec<_> = services
                            .billing
                            .plans()
                            .iter()
                            .map(|p| p.id.as_str())
                            .collect();
                        format!("no plan `{plan}`; the plans are {}", known.join(", "))
                    }
                    other => other.to_string(),
                })?;
            println!("{} is on the plan {} ({})", u.email, view.plan, view.status);
            Ok(())
        }
    }
}

/// Applies `patch` to the account with `email`, as an admin would through the API.
async fn apply(
    identity: &Identity,
    email: &str,
    patch: UserPatch,
    from: &Provenance,
) -> Result<User, String> {
    let u = find(identity, email).await?;
    identity
        .update_user(None, u.id, patch, from)
        .await
        .map_err(describe)?;
    Ok(u)
}

async fn find(identity: &Identity, email: &str) -> Result<User, String> {
    identity.user_by_email(email).await.map_err(|e| match e {
        IdentityError::NotFound => format!("no account with email {email}"),
        other => describe(other),
    })
}

fn names(roles: &[Role], separator: &str) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(separator)
}

fn describe(e: IdentityError) -> String {
    match e {
        IdentityError::Invalid(fields) => fields
            .iter()
            .map(|(f, m)| format!("{f} {m}"))
            .collect::<Vec<_>>()
            .join("; "),
        IdentityError::EmailTaken => "an account with this email exists".into(),
        other => other.to_string(),
    }
}

/// The password, without echo on a terminal (asked twice), else the first line of stdin.
fn read_password() -> Result<String, String> {
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let again = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != again {
            return Err("the passwords differ".into());
        }
        return Ok(first);
    }
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| format!("cannot read the password from stdin: {e}"))?;
    let password = line.trim_end_matches(['\r', '\n']).to_owned();
    if password.is_empty() {
        return Err("no password on stdin".into());
    }
    Ok(password)
}
