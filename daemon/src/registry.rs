//! The Confluent Schema Registry calls `format = "avro"` needs: register a
//! schema under a subject and learn its id.
//!
//! Calls are blocking and made from a source's own thread, once per new
//! schema: ids are cached per (subject, schema), so a steady source asks
//! the registry nothing. Registering a schema the subject already holds
//! returns its existing id, which is what makes a restart cheap and safe.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

use crate::config::SchemaRegistryConfig;

/// Errors talking to the registry.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The CA file could not be read or holds no certificate.
    #[error("schema_registry.ca_file {path}: {message}")]
    CaFile {
        /// The file.
        path: String,
        /// What was wrong.
        message: String,
    },
    /// No answer (connection refused, timeout, TLS failure).
    #[error("cannot reach the schema registry at {url}: {message}")]
    Unreachable {
        /// The request's URL.
        url: String,
        /// The client's error.
        message: String,
    },
    /// The registry answered with an error: an incompatible schema (409),
    /// an invalid one (422), or no permission (401, 403).
    #[error(
        "the schema registry refused the schema for subject `{subject}` (HTTP {status}): {message}"
    )]
    Refused {
        /// The subject.
        subject: String,
        /// The HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// A schema could not be looked up by its id: the registry does not
    /// know it (404), refuses the credentials, or holds no Avro schema there.
    #[error("the schema registry has no Avro schema with id {id} (HTTP {status}): {message}")]
    Lookup {
        /// The schema id.
        id: u32,
        /// The HTTP status.
        status: u16,
        /// The registry's message.
        message: String,
    },
    /// A success status without the expected body.
    #[error("the schema registry's answer for subject `{subject}` has no schema id: {body}")]
    BadReply {
        /// The subject.
        subject: String,
        /// What it sent.
        body: String,
    },
}

impl RegistryError {
    /// Whether asking again would get the same answer: the schema is
    /// incompatible or invalid, or the credentials are refused. An
    /// unreachable or failing (5xx) registry may recover.
    pub fn is_permanent(&self) -> bool {
        match self {
            RegistryError::Refused { status, .. } => (400..500).contains(status) && *status != 408,
            RegistryError::Lookup { status, .. } => *status != 408,
            RegistryError::CaFile { .. } | RegistryError::BadReply { .. } => true,
            RegistryError::Unreachable { .. } => false,
        }
    }
}

/// A client of one schema registry, shared by every Avro source.
pub struct SchemaRegistry {
    base: String,
    agent: ureq::Agent,
    authorization: Option<String>,
    ids: Mutex<HashMap<(String, Arc<str>), u32>>,
    /// Schemas by id, for readers: an id never changes its schema.
    schemas: Mutex<HashMap<u32, Arc<str>>>,
}

impl std::fmt::Debug for SchemaRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SchemaRegistry")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl SchemaRegistry {
    /// A client for `config`; reads the CA file, connects to nothing yet.
    pub fn new(config: &SchemaRegistryConfig) -> Result<SchemaRegistry, RegistryError> {
        let roots = match &config.ca_file {
            None => RootCerts::PlatformVerifier,
            Some(path) => {
                let ca_error = |message: String| RegistryError::CaFile {
                    path: path.display().to_string(),
                    message,
                };
                let pem = std::fs::read(path).map_err(|e| ca_error(e.to_string()))?;
                let certs: Vec<Certificate<'static>> = ureq::tls::parse_pem(&pem)
                    .filter_map(|item| match item {
                        Ok(PemItem::Certificate(c)) => Some(c),
                        _ => None,
                    })
                    .collect();
                if certs.is_empty() {
                    return Err(ca_error("no PEM certificate in it".to_owned()));
                }
                RootCerts::Specific(Arc::new(certs))
            }
        };
        let tls = TlsConfig::builder()
            .provider(TlsProvider::NativeTls)
            .root_certs(roots)
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_millis(config.timeout_ms)))
            .http_status_as_error(false)
            .tls_config(tls)
            .build()
            .into();
        let authorization = match (&config.bearer_token, &config.username) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Some(user)) => {
                let pair = format!("{user}:{}", config.password.as_deref().unwrap_or(""));
                Some(format!("Basic {}", crate::base64::encode(pair.as_bytes())))
            }
            (None, None) => None,
        };
        Ok(SchemaRegistry {
            base: config.url.clone(),
            agent,
            authorization,
            ids: Mutex::new(HashMap::new()),
            schemas: Mutex::new(HashMap::new()),
        })
    }

    /// The id of `schema` (Avro schema JSON) under `subject`, registering
    /// it when the registry does not hold it yet.
    pub fn register(&self, subject: &str, schema: &Arc<str>) -> Result<u32, RegistryError> {
        let key = (subject.to_owned(), schema.clone());
        if let Some(id) = lock(&self.ids).get(&key) {
            return Ok(*id);
        }
        let url = format!("{}/subjects/{subject}/versions", self.base);
        let body = serde_json::json!({ "schema": &**schema }).to_string();
        let request = self
            .authorized(self.agent.post(&url))
            .header("Content-Type", "application/vnd.schemaregistry.v1+json");
        let (status, text, reply) = answer(&url, request.send(body.as_str()))?;
        if !(200..300).contains(&status) {
            return Err(RegistryError::Refused {
                subject: subject.to_owned(),
                status,
                message: message_of(&reply, &text),
            });
        }
        let id = reply
            .get("id")
            .and_then(serde_json::Value::as_u64)
            .and_then(|id| u32::try_from(id).ok())
            .ok_or_else(|| RegistryError::BadReply {
                subject: subject.to_owned(),
                body: text.chars().take(200).collect(),
            })?;
        tracing::info!(subject, id, "Schema registered.");
        lock(&self.ids).insert(key, id);
        Ok(id)
    }

    /// The Avro schema (JSON text) registered under `id`, as a reader of
    /// Confluent-framed records needs it (`GET /schemas/ids/{id}`).
    pub fn schema(&self, id: u32) -> Result<Arc<str>, RegistryError> {
        if let Some(schema) = lock(&self.schemas).get(&id) {
            return Ok(schema.clone());
        }
        let url = format!("{}/schemas/ids/{id}", self.base);
        let (status, text, reply) = answer(&url, self.authorized(self.agent.get(&url)).call())?;
        let lookup = |message: String| RegistryError::Lookup {
            id,
            status,
            message,
        };
        if !(200..300).contains(&status) {
            return Err(lookup(message_of(&reply, &text)));
        }
        // Registries name the type of Protobuf and JSON schemas; Avro is the
        // default and often left out.
        if let Some(kind) = reply
            .get("schemaType")
            .and_then(serde_json::Value::as_str)
            .filter(|k| !k.eq_ignore_ascii_case("AVRO"))
        {
            return Err(lookup(format!("it is a {kind} schema")));
        }
        let schema: Arc<str> = reply
            .get("schema")
            .and_then(serde_json::Value::as_str)
            .ok_or_else(|| lookup(format!("no `schema` in {}", message_of(&reply, &text))))?
            .into();
        lock(&self.schemas).insert(id, schema.clone());
        Ok(schema)
    }
}

impl SchemaRegistry {
    /// `request` accepting the registry's media type, with the
    /// credentials when there are any.
    fn authorized<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        let request = request.header("Accept", "application/vnd.schemaregistry.v1+json");
        match &self.authorization {
            Some(auth) => request.header("Authorization", auth),
            None => request,
        }
    }
}

/// The status, body and parsed JSON of the registry's answer at `url`. A
/// failed connection or a 5xx is [`RegistryError::Unreachable`] (worth
/// retrying); other statuses are the caller's to judge.
fn answer(
    url: &str,
    sent: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
) -> Result<(u16, String, serde_json::Value), RegistryError> {
    let unreachable = |e: ureq::Error| RegistryError::Unreachable {
        url: url.to_owned(),
        message: e.to_string(),
    };
    let mut response = sent.map_err(unreachable)?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().map_err(unreachable)?;
    let reply: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status >= 500 {
        return Err(RegistryError::Unreachable {
            url: url.to_owned(),
            message: format!("HTTP {status}: {}", message_of(&reply, &text)),
        });
    }
    Ok((status, text, reply))
}

/// The registry's error message (`{"error_code": …, "message": …}`), or
/// the start of the body.
fn message_of(reply: &serde_json::Value, text: &str) -> String {
    reply
        .get("message")
        .and_then(serde_json::Value::as_str)
        .map_or_else(|| text.chars().take(200).collect(), str::to_owned)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incompatible_or_unauthorised_is_permanent_and_unreachable_is_not() {
        let refused = |status| RegistryError::Refused {
            subject: "t-value".into(),
            status,
            message: "x".into(),
        };
        assert!(refused(409).is_permanent());
        assert!(refused(422).is_permanent());
        assert!(refused(401).is_permanent());
        assert!(!refused(408).is_permanent());
        let down = RegistryError::Unreachable {
            url: "http://127.0.0.1:1".into(),
            message: "refused".into(),
        };
        assert!(!down.is_permanent());
    }

    #[test]
    fn an_unreachable_registry_is_named_with_its_url() {
        let registry = SchemaRegistry::new(&SchemaRegistryConfig {
            url: "http://127.0.0.1:9".into(),
            username: None,
            password: None,
            bearer_token: None,
            ca_file: None,
            timeout_ms: 2000,
        })
        .unwrap();
        let err = registry
            .register("t-value", &Arc::from("\"string\""))
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("http://127.0.0.1:9/subjects/t-value/versions"),
            "{err}"
        );
        assert!(!err.is_permanent());
    }
}
