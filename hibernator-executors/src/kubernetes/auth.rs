//! A tower layer that sets `Authorization: Bearer <EKS token>` on every
//! request of a `kube::Client`, taking the token from a shared
//! [`TokenSource`] (which refreshes it before it expires).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{AUTHORIZATION, HeaderValue};
use tower::{BoxError, Layer, Service, ServiceExt};

use super::eks_token::TokenSource;

/// Adds the bearer token of a [`TokenSource`] to every request.
#[derive(Clone, Debug)]
pub struct BearerAuthLayer {
    tokens: Arc<TokenSource>,
}

impl BearerAuthLayer {
    /// A layer taking tokens from `tokens`.
    pub fn new(tokens: Arc<TokenSource>) -> Self {
        Self { tokens }
    }
}

impl<S> Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth {
            tokens: self.tokens.clone(),
            inner: Arc::new(tokio::sync::Mutex::new(inner)),
        }
    }
}

/// The service of [`BearerAuthLayer`]. The inner service is shared behind a
/// lock held only while a request is handed to it (not while its response is
/// awaited), because getting a token is asynchronous and kube's service stack
/// is not `Clone`.
#[derive(Debug)]
pub struct BearerAuth<S> {
    tokens: Arc<TokenSource>,
    inner: Arc<tokio::sync::Mutex<S>>,
}

impl<S> Clone for BearerAuth<S> {
    fn clone(&self) -> Self {
        Self {
            tokens: self.tokens.clone(),
            inner: self.inner.clone(),
        }
    }
}

impl<S, ReqBody> Service<http::Request<ReqBody>> for BearerAuth<S>
where
    S: Service<http::Request<ReqBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    ReqBody: Send + 'static,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Readiness of the inner service is awaited in `call`, under its lock.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<ReqBody>) -> Self::Future {
        let tokens = self.tokens.clone();
        let inner = self.inner.clone();
        Box::pin(async move {
            let token = tokens.token().await?;
            let mut value = HeaderValue::try_from(format!("Bearer {}", token.value()))?;
            value.set_sensitive(true);
            request.headers_mut().insert(AUTHORIZATION, value);
            let response = {
                let mut service = inner.lock().await;
                let ready = service.ready().await.map_err(Into::into)?;
                ready.call(request)
            };
            response.await.map_err(Into::into)
        })
    }
}
