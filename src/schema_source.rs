//! Where the live exporter gets schemas:
//! - custom resources: their CustomResourceDefinitions, watched ([`watch_crds`]), so an
//!   edited CRD (a new enum value, a new version) takes effect without a restart;
//! - everything else (built-in kinds, or any kind when CRDs cannot be read): the API
//!   server's OpenAPI v3 document of the group-version ([`fetch_openapi`]), fetched once.
//!
//! Failure modes: reading CRDs needs get/list/watch on `customresourcedefinitions`; when
//! it is forbidden (or fails otherwise) [`watch_crds`] reports it once and keeps retrying
//! with backoff in the background, and the exporter uses OpenAPI or the heuristics. A
//! missing or malformed OpenAPI document is an `Err` with the reason; never fatal.

use std::collections::BTreeMap;

use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use crate::crd::{Crd, read_crd};
use crate::openapi::kinds_in_document;
use crate::schema::SchemaNode;

/// What the CRD watch reports.
#[derive(Debug)]
pub enum SchemaEvent {
    /// A CRD was listed, added or changed.
    Crd(Box<Crd>),
    /// A CRD was deleted.
    CrdDeleted {
        /// Its group.
        group: String,
        /// Its kind.
        kind: String,
    },
    /// The first list of CRDs is complete.
    CrdsSynced,
    /// CRDs cannot be read (the first error; later ones are not reported).
    CrdsUnavailable(String),
}

/// Watch all CRDs and report them on `tx` until `tx` is closed. CRDs that
/// `wanted` rejects are not reported (their schemas are not kept).
pub async fn watch_crds(
    client: Client,
    tx: mpsc::Sender<SchemaEvent>,
    wanted: impl Fn(&Crd) -> bool + Send,
) {
    let api: Api<CustomResourceDefinition> = Api::all(client);
    let mut events = watcher::watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut reported_error = false;
    while let Some(item) = events.next().await {
        let msg = match item {
            Ok(Event::Apply(crd) | Event::InitApply(crd)) => {
                let name = crd.metadata.name.clone().unwrap_or_default();
                let value = match serde_json::to_value(&crd) {
                    Ok(v) => v,
                    Err(e) => {
                        warn!(crd = %name, error = %e, "CRD not readable; its kind uses the heuristics");
                        continue;
                    }
                };
                match read_crd(&value, &format!("CRD {name}")) {
                    Ok((crd, warnings)) if wanted(&crd) => {
                        for w in warnings {
                            warn!("{w}");
                        }
                        SchemaEvent::Crd(Box::new(crd))
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        warn!(error = %e, "CRD not readable; its kind uses the heuristics");
                        continue;
                    }
                }
            }
            Ok(Event::Delete(crd)) => SchemaEvent::CrdDeleted {
                group: crd.spec.group,
                kind: crd.spec.names.kind,
            },
            Ok(Event::InitDone) => SchemaEvent::CrdsSynced,
            Ok(Event::Init) => continue,
            Err(e) => {
                if reported_error {
                    debug!(error = %e, "CRD watch error");
                    continue;
                }
                reported_error = true;
                let (reason, _) = crate::watch::classify(&e);
                warn!(
                    reason,
                    error = %e,
                    "cannot read CustomResourceDefinitions (grant get/list/watch on \
                     customresourcedefinitions for schema-aware enums and HELP); custom \
                     resources use OpenAPI v3 or the heuristics meanwhile"
                );
                SchemaEvent::CrdsUnavailable(format!("{reason}: {e}"))
            }
        };
        if tx.send(msg).await.is_err() {
            return;
        }
    }
}

/// The schemas of the kinds of `group`/`version` from the API server's OpenAPI v3
/// document (`/openapi/v3`, then the group-version's `serverRelativeURL`).
pub async fn fetch_openapi(
    client: &Client,
    group: &str,
    version: &str,
) -> Result<BTreeMap<String, SchemaNode>, String> {
    let index = get_json(client, "/openapi/v3").await?;
    let key = if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    };
    let url = index
        .pointer("/paths")
        .and_then(|p| p.get(&key))
        .and_then(|p| p.get("serverRelativeURL"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| format!("/openapi/v3/{key}"));
    let doc = get_json(client, &url).await?;
    let (kinds, warnings) = kinds_in_document(&doc, group, version);
    for w in warnings {
        debug!(group_version = %key, "OpenAPI: {w}");
    }
    Ok(kinds)
}

async fn get_json(client: &Client, path: &str) -> Result<Value, String> {
    let req = http::Request::get(path)
        .header(http::header::ACCEPT, "application/json")
        .body(Vec::new())
        .map_err(|e| format!("GET {path}: {e}"))?;
    let text = client
        .request_text(req)
        .await
        .map_err(|e| format!("GET {path}: {e}"))?;
    serde_json::from_str(&text).map_err(|e| format!("GET {path}: not JSON: {e}"))
}
