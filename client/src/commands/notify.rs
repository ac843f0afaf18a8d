//! `tapgate notify show|email|events` (where your alerts go) and `tapgate webhook ls|set` (a
//! package's webhooks; setting them is approved with a tap).

use anyhow::Result;
use reqwest::Method;
use tapgate_shared::api::{NotificationSettings, SetEmail, SetEvents, SetWebhooks, Webhooks};
use tapgate_shared::gate_intent::Change;

use super::{encode_name, with_otp};
use crate::cli::{Global, NotifyCommand, WebhookCommand};
use crate::gated::{self, Expected};
use crate::output::emit;

fn show(settings: &NotificationSettings) -> String {
    let mut lines = vec![format!(
        "alerts go to: {}",
        settings
            .email
            .as_deref()
            .unwrap_or("no verified address (lock alerts reach you only by your packages' webhooks)")
    )];
    if let Some(pending) = &settings.pending_email {
        lines.push(format!("waiting for confirmation: {pending} (open the link sent to it)"));
    }
    lines.push(format!("events besides lock alerts: {}", settings.events.join(", ")));
    lines.join("\n")
}

pub async fn run(g: &Global, cmd: NotifyCommand) -> Result<()> {
    let client = super::authed_client(g)?;
    let settings: NotificationSettings = match cmd {
        NotifyCommand::Show => client.get("/api/v1/user/notifications").await?,
        NotifyCommand::Email { address } => {
            let req = client.request(Method::PUT, "/api/v1/user/email").json(&SetEmail { email: address });
            let settings = client.send(req).await?;
            eprintln!("A confirmation link was sent; alerts go to the new address once it is opened.");
            settings
        }
        NotifyCommand::Events { events } => {
            let req = client.request(Method::PUT, "/api/v1/user/notifications").json(&SetEvents { events });
            client.send(req).await?
        }
    };
    emit(g.json, &settings, || show(&settings));
    Ok(())
}

pub async fn webhook(g: &Global, cmd: WebhookCommand) -> Result<()> {
    let client = super::authed_client(g)?;
    let hooks: Webhooks = match cmd {
        WebhookCommand::Ls { package } => {
            client.get(&format!("/api/v1/packages/{}/webhooks", encode_name(&package))).await?
        }
        WebhookCommand::Set { package, urls } => {
            let path = format!("/api/v1/packages/{}/webhooks", encode_name(&package));
            let current: Webhooks = client.get(&path).await?;
            let mut old: Vec<String> = current.webhooks.into_iter().map(|w| w.url).collect();
            old.sort();
            let mut new: Vec<String> = urls.iter().map(|u| u.trim().to_string()).collect();
            new.sort();
            new.dedup();
            let expected = Expected::new(&package, Change::WebhookSet { old, new: new.clone() });
            let body = SetWebhooks { urls: new };
            let resp = gated::send(g, &client, Some(&expected), |otp| {
                with_otp(client.request(Method::PUT, &path).json(&body), otp)
            })
            .await?;
            resp.json().await?
        }
    };
    emit(g.json, &hooks, || {
        hooks
            .webhooks
            .iter()
            .map(|w| match &w.secret {
                Some(secret) => {
                    format!("{}\tsecret {secret} (shown once: verify tapgate-signature with it)", w.url)
                }
                None => w.url.clone(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}
