//! HTTP serving: site routing by path prefix, connection aborts for injected faults.

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::ServiceExt;

use crate::pacing::AbortConnection;
use crate::Sim;

/// How a REST request reached the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// `{base}/rest/...` (first site) or `{base}/site/{slug}/rest/...`.
    Direct,
    /// `{base}/ex/jira/{cloudId}/rest/...` with an OAuth bearer token.
    OAuth,
}

/// Request context set before routing.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub site: usize,
    pub via: Via,
    /// `base_url` plus the prefix the request came through (used for `self` links).
    pub base: String,
}

pub(crate) fn app(sim: Arc<Sim>) -> Router {
    Router::new()
        .merge(crate::rest::routes())
        .nest("/_sim", crate::control::routes(&sim))
        .merge(sim.ext.public_router())
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            crate::pacing::middleware,
        ))
        .with_state(sim)
}

async fn fallback() -> Response {
    crate::util::jerr(404, &["null for uri: not found"], &[])
}

#[derive(Debug)]
struct Aborted;
impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection aborted by fault injection")
    }
}
impl std::error::Error for Aborted {}

/// Strips a site prefix and records the site in the request's extensions.
fn route_site(sim: &Sim, mut req: Request<Body>) -> Result<Request<Body>, Response> {
    let path = req.uri().path().to_string();
    let (site, via, prefix, rest) = if let Some(r) = path.strip_prefix("/site/") {
        let (slug, rest) = r.split_once('/').unwrap_or((r, ""));
        let w = sim.world.lock();
        let Some(i) = w.sites.iter().position(|s| s.slug == slug) else {
            return Err(crate::util::jerr(404, &["Site not found."], &[]));
        };
        (i, Via::Direct, format!("/site/{slug}"), format!("/{rest}"))
    } else if let Some(r) = path.strip_prefix("/ex/jira/") {
        let (cid, rest) = r.split_once('/').unwrap_or((r, ""));
        let w = sim.world.lock();
        let Some(i) = w
            .sites
            .iter()
            .position(|s| s.cloud_id == cid && !cid.is_empty())
        else {
            return Err(crate::util::jerr(404, &["Site not found."], &[]));
        };
        (i, Via::OAuth, format!("/ex/jira/{cid}"), format!("/{rest}"))
    } else {
        (0, Via::Direct, String::new(), path.clone())
    };
    if !prefix.is_empty() {
        let pq = match req.uri().query() {
            Some(q) => format!("{rest}?{q}"),
            None => rest,
        };
        if let Ok(u) = pq.parse::<Uri>() {
            *req.uri_mut() = u;
        }
    }
    req.extensions_mut().insert(Ctx {
        site,
        via,
        base: format!("{}{}", sim.base_url, prefix),
    });
    Ok(req)
}

async fn dispatch(sim: Arc<Sim>, app: Router, req: Request<Incoming>) -> Result<Response, Aborted> {
    let req = req.map(Body::new);
    let resp = match route_site(&sim, req) {
        Ok(req) => {
            let r: Result<Response, Infallible> = app.oneshot(req).await;
            match r {
                Ok(r) => r,
                Err(e) => match e {},
            }
        }
        Err(r) => r.into_response(),
    };
    if resp.extensions().get::<AbortConnection>().is_some() {
        return Err(Aborted);
    }
    Ok(resp)
}

pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    sim: Arc<Sim>,
    mut stop: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let app = app.clone();
                let sim = sim.clone();
                conns.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        dispatch(sim.clone(), app.clone(), req)
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .keep_alive(true)
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = stop.changed() => break,
        }
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}
