//! The session and request id headers, read from a request and echoed on its
//! response, with each dialect's rules for the session id.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::errors::{ApiError, Dialect};
use crate::front::validate_session_id;

pub const SESSION_HEADER: HeaderName =
    HeaderName::from_static("x-amzn-bedrock-agentcore-runtime-session-id");
pub const REQUEST_HEADER: HeaderName =
    HeaderName::from_static("x-amzn-bedrock-agentcore-runtime-request-id");
/// Where botocore looks for `ResponseMetadata.RequestId`.
pub const AWS_REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-amzn-requestid");

/// The service model's `SessionType`: 33 to 256 characters.
pub const AWS_MIN_SESSION_ID_CHARS: usize = 33;
pub const AWS_MAX_SESSION_ID_CHARS: usize = 256;

/// The ids of one invocation.
#[derive(Debug, Clone)]
pub struct Ids {
    pub session_id: String,
    pub request_id: String,
}

impl Ids {
    /// Reads both ids, generating each one that is absent (as AgentCore and its
    /// SDKs do), and checks the session id by `dialect`'s rules.
    pub fn from_headers(headers: &HeaderMap, dialect: Dialect) -> Result<Self, ApiError> {
        let session_id = match header_text(headers, &SESSION_HEADER, dialect)? {
            Some(id) => {
                check_session_id(&id, dialect)?;
                id
            }
            None => uuid::Uuid::new_v4().to_string(),
        };
        let request_id = header_text(headers, &REQUEST_HEADER, dialect)?
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        Ok(Ids {
            session_id,
            request_id,
        })
    }

    /// Puts the ids on a response, so a client that sent none learns them.
    pub fn echo(&self, headers: &mut HeaderMap, dialect: Dialect) {
        // Both came from header values or a uuid, so they are valid values
        // (bytes, not `from_str`: a UTF-8 id is obs-text, legal but not ASCII);
        // a failure here would only drop the echo, never the answer.
        if let Ok(value) = HeaderValue::from_bytes(self.session_id.as_bytes()) {
            headers.insert(SESSION_HEADER, value);
        }
        if let Ok(value) = HeaderValue::from_bytes(self.request_id.as_bytes()) {
            if dialect == Dialect::Aws {
                headers.insert(AWS_REQUEST_ID_HEADER, value.clone());
            }
            headers.insert(REQUEST_HEADER, value);
        }
    }
}

/// A header as UTF-8 text; `None` when absent.
pub fn header_text(
    headers: &HeaderMap,
    name: &HeaderName,
    dialect: Dialect,
) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else {
        return Ok(None);
    };
    std::str::from_utf8(value.as_bytes())
        .map(|text| Some(text.to_string()))
        .map_err(|_| ApiError::invalid(dialect, format!("the {name} header is not UTF-8")))
}

/// Every id must be safe to name things on the host; the AWS routes also
/// enforce the service model's length range.
pub fn check_session_id(id: &str, dialect: Dialect) -> Result<(), ApiError> {
    validate_session_id(id).map_err(|reason| ApiError::invalid(dialect, reason))?;
    if dialect == Dialect::Aws {
        let chars = id.chars().count();
        if !(AWS_MIN_SESSION_ID_CHARS..=AWS_MAX_SESSION_ID_CHARS).contains(&chars) {
            return Err(ApiError::invalid(
                dialect,
                format!(
                    "runtimeSessionId is {chars} characters; it must be \
                     {AWS_MIN_SESSION_ID_CHARS} to {AWS_MAX_SESSION_ID_CHARS}"
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_session(id: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(SESSION_HEADER, HeaderValue::from_str(id).unwrap());
        headers
    }

    #[test]
    fn absent_ids_are_generated_and_present_ones_kept() {
        let ids = Ids::from_headers(&HeaderMap::new(), Dialect::Aws).unwrap();
        assert_eq!(ids.session_id.len(), 36);
        assert_ne!(ids.session_id, ids.request_id);
        let ids = Ids::from_headers(&with_session("a"), Dialect::Runtime).unwrap();
        assert_eq!(ids.session_id, "a");
    }

    #[test]
    fn the_aws_routes_require_33_to_256_characters() {
        let short = "s".repeat(32);
        assert!(Ids::from_headers(&with_session(&short), Dialect::Runtime).is_ok());
        assert!(Ids::from_headers(&with_session(&short), Dialect::Aws).is_err());
        assert!(Ids::from_headers(&with_session(&"s".repeat(33)), Dialect::Aws).is_ok());
        assert!(Ids::from_headers(&with_session(&"s".repeat(256)), Dialect::Aws).is_ok());
        assert!(Ids::from_headers(&with_session(&"s".repeat(257)), Dialect::Runtime).is_err());
    }

    #[test]
    fn ids_that_could_name_a_path_are_refused() {
        assert!(Ids::from_headers(&with_session("a/b"), Dialect::Runtime).is_err());
    }

    #[test]
    fn the_aws_dialect_also_sets_the_botocore_request_id() {
        let ids = Ids {
            session_id: "s".into(),
            request_id: "r".into(),
        };
        let mut headers = HeaderMap::new();
        ids.echo(&mut headers, Dialect::Aws);
        assert_eq!(headers[SESSION_HEADER], "s");
        assert_eq!(headers[REQUEST_HEADER], "r");
        assert_eq!(headers[AWS_REQUEST_ID_HEADER], "r");
    }
}
