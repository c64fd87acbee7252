//! The one function every request passes through when a web configuration is given:
//! basic authentication (401 with a `WWW-Authenticate` challenge, and an audit event
//! for a failed attempt; 503, or 429 for a client over its own share, with
//! `Retry-After` when authentication was too busy to check the credentials, audited
//! at a limited rate) and the configured response headers, on every answer.
//!
//! The settings are read from the running web configuration at each request, so a
//! reload applies at once. Checking credentials, and deciding when it is too busy to,
//! is `web::auth`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{Busy, BusyReason, Denied, CHALLENGE, RETRY_AFTER};
use super::Web;
use crate::audit;

/// Authenticates `request` and adds the configured headers to the answer.
pub async fn guard(
    State(web): State<Arc<Web>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let active = web.active();
    let users = &active.config.users;
    let mut response = if users.is_empty() {
        next.run(request).await
    } else {
        let authorization = request.headers().get(header::AUTHORIZATION);
        match web
            .authenticator
            .check(users, authorization, client.ip())
            .await
        {
            Ok(_user) => next.run(request).await,
            Err(Denied::Busy(busy)) => busy_answer(client, &busy),
            Err(denied) => {
                if denied != Denied::Missing {
                    audit::auth_failed(
                        client,
                        audit::Method::Basic,
                        denied.user(),
                        denied.reason(),
                        "",
                    );
                }
                (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, CHALLENGE)],
                    "401 Unauthorized: this certwatch requires basic authentication\n",
                )
                    .into_response()
            }
        }
    };
    for (name, value) in &active.config.headers {
        response.headers_mut().insert(name.clone(), value.clone());
    }
    response
}

/// The answer to a request whose credentials were not checked: not 401, which would
/// tell a client with the right password that it is wrong, but "come back in a
/// second".
fn busy_answer(client: SocketAddr, busy: &Busy) -> Response {
    let seconds = RETRY_AFTER.as_secs();
    let (status, body) = match busy.reason {
        BusyReason::ClientLimit => (
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "429 Too Many Requests: too many authentication checks from {} at once; retry in {seconds}s\n",
                client.ip()
            ),
        ),
        BusyReason::QueueFull | BusyReason::WaitDeadline => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "503 Service Unavailable: too many authentication checks at once; retry in {seconds}s\n"
            ),
        ),
    };
    if let Some(suppressed) = busy.log {
        audit::auth_refused(
            client,
            audit::Method::Basic,
            &busy.user,
            busy.reason.as_str(),
            status.as_u16(),
            suppressed,
        );
    }
    (status, [(header::RETRY_AFTER, seconds.to_string())], body).into_response()
}
