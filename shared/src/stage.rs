//! Staged releases, as npm's `npm stage` commands read them (`GET /-/stage`, `GET
//! /-/stage/<id>`). npm shows `id`, `packageName`, `version`, `tag`, `createdAt`, `actor`,
//! `actorType` and `shasum` by name, and every other field as it comes; tapgate adds what a
//! maintainer needs to decide (the tarball's integrity, every tag, the state, the expiry, the
//! review page).

use serde::{Deserialize, Serialize};

/// Where a staged release is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    /// Waiting for a maintainer: approve it (it is published) or reject it.
    Pending,
    /// Approved with a maintainer's tap and published.
    Published,
    /// Rejected by a maintainer; its tarball is deleted.
    Rejected,
    /// The same version was published another way (or from another stage) first.
    Superseded,
    /// Nobody decided before it expired; its tarball is deleted.
    Expired,
}

impl StageState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Published => "published",
            Self::Rejected => "rejected",
            Self::Superseded => "superseded",
            Self::Expired => "expired",
        }
    }

    /// The stored states (`expired` is derived from the expiry).
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Pending, Self::Published, Self::Rejected, Self::Superseded, Self::Expired]
            .into_iter()
            .find(|state| state.as_str() == s)
    }
}

/// Who uploaded a staged release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StageActor {
    /// A user's API token.
    User,
    /// A CI credential (`tg_ci_…`) a maintainer authorized with a tap.
    CiCredential,
    /// An OIDC trusted publisher.
    Oidc,
}

impl StageActor {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::CiCredential => "ci-credential",
            Self::Oidc => "oidc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::User, Self::CiCredential, Self::Oidc].into_iter().find(|a| a.as_str() == s)
    }
}

/// One staged release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageItem {
    pub id: String,
    pub package_name: String,
    pub version: String,
    /// The first dist-tag the publish sets (npm shows one); `tags` has them all.
    pub tag: String,
    pub tags: Vec<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The account the upload acts for (a CI credential's creator, or the user).
    pub actor: String,
    pub actor_type: StageActor,
    /// The CI credential (`ci_…`) or trust that uploaded it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// The tarball's SHA-1 (hex) and SHA-512 SRI, computed by the registry from the bytes it
    /// keeps. A client recomputes them from the tarball it downloads before it approves.
    pub shasum: String,
    pub integrity: String,
    /// Tarball bytes.
    pub size: i64,
    pub state: StageState,
    /// RFC 3339; after it the stage can no longer be approved.
    pub expires_at: String,
    /// Who decided, and when (RFC 3339), once decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_at: Option<String>,
    /// The page to review and approve it on.
    pub url: String,
}

/// A page of `GET /-/stage`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageList {
    pub items: Vec<StageItem>,
    pub total: i64,
}

/// `POST /-/stage/package/<name>`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Staged {
    pub stage_id: String,
    #[serde(flatten)]
    pub item: StageItem,
}
