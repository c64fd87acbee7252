//! The one function every request passes through when a web configuration is given:
//! basic authentication (401 with a `WWW-Authenticate` challenge, and an audit event
//! for a failed attempt) and the configured response headers, on every answer.
//!
//! The settings are read from the running web configuration at each request, so a
//! reload applies at once. Checking credentials is `web::auth`'s.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::auth::{Denied, CHALLENGE};
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
        match web.authenticator.check(users, authorization).await {
            Ok(_user) => next.run(request).await,
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
