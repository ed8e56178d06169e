//! The browser pages: the sign-in demo (`/demo/`) and the admin console
//! (`/admin/`), their security headers, and when they are served at all.

mod support;

use portcullis_store::testing::TestDb;
use reqwest::header::HeaderMap;
use support::*;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' blob:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The headers every UI answer carries.
fn assert_protected(headers: &HeaderMap, content_type: &str) {
    assert_eq!(headers["content-type"], content_type);
    assert_eq!(headers["content-security-policy"], CSP);
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-cache");
}

async fn get(app: &App, path: &str) -> support::HttpResponse {
    app.http
        .get(format!("{}{path}", app.base))
        .send()
        .await
        .expect("request")
}

/// The four files of a page, with their security headers; returns the
/// parsed `config.json`.
async fn assert_page_served(app: &App, dir: &str, script: &str, style: &str) -> serde_json::Value {
    let res = get(app, &format!("/{dir}/")).await;
    assert_eq!(res.status(), 200);
    assert_protected(res.headers(), "text/html; charset=utf-8");
    let html = res.text().await.expect("body");
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains(&format!(r#"<script src="{script}" defer></script>"#)));
    // The CSP forbids inline code: the page has none.
    assert!(!html.contains("<script>") && !html.contains("<style") && !html.contains(" style="));
    assert!(!html.contains(" onclick="));

    let res = get(app, &format!("/{dir}/{script}")).await;
    assert_eq!(res.status(), 200);
    assert_protected(res.headers(), "text/javascript; charset=utf-8");
    assert!(res.text().await.expect("body").contains("\"use strict\";"));

    let res = get(app, &format!("/{dir}/{style}")).await;
    assert_eq!(res.status(), 200);
    assert_protected(res.headers(), "text/css; charset=utf-8");

    let res = get(app, &format!("/{dir}/config.json")).await;
    assert_eq!(res.status(), 200);
    assert_protected(res.headers(), "application/json");
    res.json().await.expect("json")
}

async fn assert_not_served(app: &App, dir: &str, files: &[&str]) {
    for file in files {
        let res = get(app, &format!("/{dir}{file}")).await;
        assert_eq!(res.status(), 404, "/{dir}{file}");
    }
}

const DEMO_FILES: &[&str] = &["", "/", "/demo.js", "/demo.css", "/config.json"];
const ADMIN_FILES: &[&str] = &["", "/", "/admin.js", "/forms.js", "/admin.css", "/config.json"];

#[tokio::test]
async fn by_default_the_console_is_served_and_the_demo_is_not() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db).await;
    let config = assert_page_served(&app, "admin", "admin.js", "admin.css").await;
    assert_eq!(config, serde_json::json!({"client_id": "portcullis-admin"}));
    // The create, edit and delete forms: a second script, under the same rules.
    let html = get(&app, "/admin/").await.text().await.expect("body");
    assert!(html.contains(r#"<script src="forms.js" defer></script>"#));
    let res = get(&app, "/admin/forms.js").await;
    assert_eq!(res.status(), 200);
    assert_protected(res.headers(), "text/javascript; charset=utf-8");
    assert!(res.text().await.expect("body").contains("\"use strict\";"));
    assert_not_served(&app, "demo", DEMO_FILES).await;
    db.finish().await;
}

#[tokio::test]
async fn the_demo_is_served_when_switched_on_with_its_client() {
    let db = TestDb::sqlite().await;
    let app = spawn_settings(&db.url, |s| s.demo_client_id = Some("my-web-app".into())).await;
    let config = assert_page_served(&app, "demo", "demo.js", "demo.css").await;
    assert_eq!(config, serde_json::json!({"client_id": "my-web-app"}));
    db.finish().await;
}

#[tokio::test]
async fn the_console_can_be_switched_off_and_takes_its_client_from_the_settings() {
    let db = TestDb::sqlite().await;
    let off = spawn_settings(&db.url, |s| s.admin_console_client_id = None).await;
    assert_not_served(&off, "admin", ADMIN_FILES).await;
    // The admin API is not part of the console: still there (401 without a token).
    assert_eq!(get(&off, "/admin/v1/clients").await.status(), 401);

    let other = spawn_settings(&db.url, |s| s.admin_console_client_id = Some("ops-console".into())).await;
    let config = assert_page_served(&other, "admin", "admin.js", "admin.css").await;
    assert_eq!(config, serde_json::json!({"client_id": "ops-console"}));
    db.finish().await;
}

#[tokio::test]
async fn the_bare_directory_names_redirect_to_the_slash_form() {
    let db = TestDb::sqlite().await;
    let app = spawn_settings(&db.url, |s| s.demo_client_id = Some("portcullis-demo".into())).await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for (from, to) in [("/demo", "demo/"), ("/admin", "admin/")] {
        let res = no_redirects
            .get(format!("{}{from}", app.base))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), 308, "{from}");
        // Relative, so that it also resolves under a proxy's path prefix.
        assert_eq!(res.headers()["location"], to);
        assert_eq!(res.headers()["content-security-policy"], CSP);
    }
    db.finish().await;
}

#[tokio::test]
async fn the_pages_accept_only_get_and_head() {
    let db = TestDb::sqlite().await;
    let app = spawn(&db).await;
    let res = app
        .http
        .head(format!("{}/admin/", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 200);
    assert_protected(res.headers(), "text/html; charset=utf-8");
    let res = app
        .http
        .post(format!("{}/admin/", app.base))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 405);
    db.finish().await;
}
