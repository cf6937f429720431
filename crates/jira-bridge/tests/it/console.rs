//! The console over HTTP: sign-in, the session cookie, CSRF protection of console forms
//! and of the API when called with the cookie, sign-out, and tenant isolation.

use jira_bridge::console::session::hash_id;
use jira_bridge_store::Timestamp;
use reqwest::redirect::Policy;
use reqwest::{Client, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp, ADMIN_KEY};

fn client() -> Client {
    Client::builder().redirect(Policy::none()).build().unwrap()
}

/// `name=value` of a `Set-Cookie` header for `name`, with its attributes.
fn set_cookie(res: &Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap();
    pair.split_once('=').unwrap().1.to_owned()
}

fn location(res: &Response) -> String {
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// The value of the first `name="csrf" value="…"` or `csrf-token" content="…"`.
fn csrf_in(html: &str) -> String {
    for marker in ["name=\"csrf\" value=\"", "name=\"csrf-token\" content=\""] {
        if let Some(i) = html.find(marker) {
            let rest = &html[i + marker.len()..];
            return rest[..rest.find('"').unwrap()].to_owned();
        }
    }
    panic!("no CSRF token in the page");
}

/// A signed-in browser: the session cookie and the page's CSRF token.
pub(crate) struct Browser {
    app_base: String,
    http: Client,
    pub(crate) session: String,
    csrf: String,
}

impl Browser {
    pub(crate) async fn sign_in(app: &TestApp, key: &str) -> Browser {
        let http = client();
        let page = http.get(app.url("/console/login")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let login = cookie_value(&set_cookie(&page, "jb_login").unwrap());
        let form_token = csrf_in(&page.text().await.unwrap());
        assert_eq!(login, form_token, "double-submit token in cookie and form");
        let res = http
            .post(app.url("/console/login"))
            .header("cookie", format!("jb_login={login}"))
            .form(&[("api_key", key), ("csrf", &form_token)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER);
        assert_eq!(location(&res), "/console/connections");
        let sc = set_cookie(&res, "jb_session").expect("a session cookie");
        assert!(sc.contains("HttpOnly"), "{sc}");
        assert!(sc.contains("SameSite=Lax"), "{sc}");
        assert!(sc.contains("Path=/"), "{sc}");
        let session = cookie_value(&sc);
        let mut b = Browser {
            app_base: app.base.clone(),
            http,
            session,
            csrf: String::new(),
        };
        let page = b.get("/console/connections").await;
        assert_eq!(page.status(), 200);
        b.csrf = csrf_in(&page.text().await.unwrap());
        b
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.app_base)
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.http
            .get(self.url(path))
            .header("cookie", format!("jb_session={}", self.session))
            .send()
            .await
            .unwrap()
    }

    /// A JSON call of the API with the cookie and, when given, an `X-CSRF-Token`.
    async fn api(&self, method: &str, path: &str, body: Value, csrf: Option<&str>) -> Response {
        let mut req = self
            .http
            .request(method.parse().unwrap(), self.url(path))
            .header("cookie", format!("jb_session={}", self.session))
            .json(&body);
        if let Some(t) = csrf {
            req = req.header("x-csrf-token", t);
        }
        req.send().await.unwrap()
    }
}

#[tokio::test]
async fn signing_in_opens_a_hashed_session_and_signing_out_ends_it() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("console").await;
    let http = client();

    // Not signed in: pages send the browser to the sign-in page.
    for path in ["/", "/console", "/console/jobs"] {
        let res = http.get(app.url(path)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
    }
    let res = http.get(app.url("/console/jobs")).send().await.unwrap();
    assert_eq!(location(&res), "/console/login");

    // A wrong key: 401 on the form, no session.
    let page = http.get(app.url("/console/login")).send().await.unwrap();
    let login = cookie_value(&set_cookie(&page, "jb_login").unwrap());
    let res = http
        .post(app.url("/console/login"))
        .header("cookie", format!("jb_login={login}"))
        .form(&[("api_key", "jbk_wrong"), ("csrf", &login)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookie(&res, "jb_session").is_none());
    // The sign-in form without its double-submit token: 403.
    let res = http
        .post(app.url("/console/login"))
        .form(&[("api_key", t.key.as_str()), ("csrf", &login)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&res, "jb_session").is_none());

    let b = Browser::sign_in(&app, &t.key).await;
    // Only the hash of the session id is stored.
    let store = app.store().await;
    let now = Timestamp::now();
    let row = store
        .find_console_session(&hash_id(&b.session), now)
        .await
        .unwrap()
        .expect("the session row");
    assert_eq!(row.tenant_id.to_string(), t.id);
    assert!(store
        .find_console_session(&b.session, now)
        .await
        .unwrap()
        .is_none());
    // Pages carry security headers.
    let res = b.get("/console/events").await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(res.headers()["x-frame-options"], "DENY");

    // The API accepts the cookie for reads.
    let res = b.get("/v1/me").await;
    assert_eq!(res.status(), 200);

    // Sign-out needs the token too.
    for token in [None, Some("wrong")] {
        let mut form = vec![];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let res = b
            .http
            .post(b.url("/console/logout"))
            .header("cookie", format!("jb_session={}", b.session))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "token {token:?}");
    }
    assert_eq!(b.get("/console/connections").await.status(), 200);
    let res = b
        .http
        .post(b.url("/console/logout"))
        .header("cookie", format!("jb_session={}", b.session))
        .form(&[("csrf", b.csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let cleared = set_cookie(&res, "jb_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie no longer works anywhere.
    let res = b.get("/console/connections").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_problem(b.get("/v1/me").await, 401, "unauthorized").await;
    assert!(store
        .find_console_session(&hash_id(&b.session), now)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn api_writes_with_the_session_cookie_need_its_csrf_token() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("csrf").await;
    let b = Browser::sign_in(&app, &t.key).await;
    let body = json!({"url": "http://127.0.0.1:9/hook"});

    let res = b.api("POST", "/v1/subscriptions", body.clone(), None).await;
    let p = assert_problem(res, 403, "forbidden").await;
    assert!(p["detail"].as_str().unwrap().contains("CSRF"), "{p}");
    let res = b
        .api(
            "POST",
            "/v1/subscriptions",
            body.clone(),
            Some("not-the-token"),
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    // Another session's token does not do either.
    let other = Browser::sign_in(&app, &t.key).await;
    assert_ne!(other.csrf, b.csrf);
    let res = b
        .api("POST", "/v1/subscriptions", body.clone(), Some(&other.csrf))
        .await;
    assert_problem(res, 403, "forbidden").await;
    // Nothing was created.
    let list: Value = b.get("/v1/subscriptions").await.json().await.unwrap();
    assert_eq!(list["items"].as_array().unwrap().len(), 0, "{list}");

    let res = b
        .api("POST", "/v1/subscriptions", body, Some(&b.csrf))
        .await;
    assert_eq!(res.status(), 201);
    let sub: Value = res.json().await.unwrap();
    let id = sub["id"].as_str().unwrap();
    let res = b
        .api(
            "DELETE",
            &format!("/v1/subscriptions/{id}"),
            json!({}),
            None,
        )
        .await;
    assert_problem(res, 403, "forbidden").await;
    let res = b
        .api(
            "DELETE",
            &format!("/v1/subscriptions/{id}"),
            json!({}),
            Some(&b.csrf),
        )
        .await;
    assert_eq!(res.status(), 204);
}

#[tokio::test]
async fn another_tenants_ids_are_not_visible_or_actionable() {
    let app = TestApp::spawn().await;
    let a = app.create_tenant("tenant-a").await;
    let b_tenant = app.create_tenant("tenant-b").await;
    let res = app
        .client
        .post(app.url("/v1/subscriptions"))
        .bearer_auth(&a.key)
        .json(&json!({"url": "http://127.0.0.1:9/tenant-a-only"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let sub: Value = res.json().await.unwrap();
    let sub_id = sub["id"].as_str().unwrap().to_owned();

    // A sees its subscription in the console.
    let a_browser = Browser::sign_in(&app, &a.key).await;
    let res = a_browser.get(&format!("/console/events/{sub_id}")).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("tenant-a-only"));

    // B does not: not in the list, 404 by id, and not actionable.
    let b = Browser::sign_in(&app, &b_tenant.key).await;
    let page = b.get("/console/events").await.text().await.unwrap();
    assert!(!page.contains("tenant-a-only"));
    let res = b.get(&format!("/console/events/{sub_id}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let html = res.text().await.unwrap();
    assert!(html.contains("no such subscription"), "{html}");
    let res = b
        .api(
            "DELETE",
            &format!("/v1/subscriptions/{sub_id}"),
            json!({}),
            Some(&b.csrf),
        )
        .await;
    assert_problem(res, 404, "not-found").await;
    for path in [
        "/console/jobs/job_01a2019b05e37597a3866a9122d4858d",
        "/console/configs/cfg_01a2019b05e37597a3866a9122d4858d",
        "/console/jobs/not-an-id",
    ] {
        assert_eq!(b.get(path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    // A's subscription is still there.
    let res = a_browser.get(&format!("/console/events/{sub_id}")).await;
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions() {
    let app = TestApp::spawn().await;
    let t = app.create_tenant("revoked").await;
    let b = Browser::sign_in(&app, &t.key).await;
    assert_eq!(b.get("/console/jobs").await.status(), 200);
    let res = app
        .client
        .delete(app.url(&format!("/v1/admin/tenants/{}/keys/{}", t.id, t.key_id)))
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(b.get("/console/jobs").await.status(), StatusCode::SEE_OTHER);
    assert_problem(b.get("/v1/me").await, 401, "unauthorized").await;
}

#[tokio::test]
async fn console_assets_are_embedded() {
    let app = TestApp::spawn().await;
    for (name, ct) in [
        ("console.js", "text/javascript"),
        ("console.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        let res = app
            .client
            .get(app.url(&format!("/console/assets/{name}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{name}");
        let got = res.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(got.starts_with(ct), "{name}: {got}");
    }
    let res = app
        .client
        .get(app.url("/console/assets/nope.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
