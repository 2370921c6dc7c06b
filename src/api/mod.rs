//! The Zoho CRM API as massup uses it: where to send calls (data centres, URL checks), one
//! shared HTTP client, the `mass_update` call and the field metadata fetch. Reading an
//! answer is in `response` (pure), tokens in `auth`, Zoho's token budget in `budget`.
pub mod auth;
pub mod bodies;
pub mod budget;
pub mod limits;
pub mod response;
pub mod token_store;

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::Url;

use crate::error::UsageError;

/// Zoho's data centres: accounts server and API domain.
pub const DATA_CENTRES: &[(&str, &str, &str)] = &[
    (
        "us",
        "https://accounts.zoho.com",
        "https://www.zohoapis.com",
    ),
    ("eu", "https://accounts.zoho.eu", "https://www.zohoapis.eu"),
    ("in", "https://accounts.zoho.in", "https://www.zohoapis.in"),
    (
        "au",
        "https://accounts.zoho.com.au",
        "https://www.zohoapis.com.au",
    ),
    ("jp", "https://accounts.zoho.jp", "https://www.zohoapis.jp"),
    (
        "cn",
        "https://accounts.zoho.com.cn",
        "https://www.zohoapis.com.cn",
    ),
    (
        "ca",
        "https://accounts.zohocloud.ca",
        "https://www.zohoapis.ca",
    ),
    ("sa", "https://accounts.zoho.sa", "https://www.zohoapis.sa"),
];

/// The accounts URL and API domain of a data centre code.
pub fn data_centre(code: &str) -> Result<(&'static str, &'static str), UsageError> {
    DATA_CENTRES
        .iter()
        .find(|(c, _, _)| c.eq_ignore_ascii_case(code))
        .map(|(_, accounts, api)| (*accounts, *api))
        .ok_or_else(|| {
            let known: Vec<&str> = DATA_CENTRES.iter().map(|(c, _, _)| *c).collect();
            UsageError::new(format!(
                "unknown data centre {code:?}; use one of {}",
                known.join(", ")
            ))
        })
}

/// Every Zoho URL massup calls, built from one API domain (checked) and version: the only
/// place that knows Zoho's paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    domain: String,
    version: String,
    /// Where Bulk Write's files are uploaded: `content.zohoapis.X` for `www.zohoapis.X`,
    /// else the API domain itself (a loopback mock serves both), or `--content-domain`.
    content: String,
}

impl Endpoints {
    pub fn new(domain: &str, version: &str) -> Endpoints {
        let domain = domain.trim_end_matches('/').to_string();
        Endpoints {
            content: content_domain_of(&domain),
            domain,
            version: version.to_string(),
        }
    }

    /// The same endpoints with uploads sent to `content` (`--content-domain`, checked).
    pub fn with_content_domain(mut self, content: Option<&str>) -> Endpoints {
        if let Some(content) = content {
            self.content = content.trim_end_matches('/').to_string();
        }
        self
    }

    /// `GET .../crm/{v}/org`: the org's details, its id among them.
    pub fn org(&self) -> String {
        format!("{}/crm/{}/org", self.domain, self.version)
    }

    /// `POST {content domain}/crm/{v}/upload`: a Bulk Write job's zipped CSV.
    pub fn upload(&self) -> String {
        format!("{}/crm/{}/upload", self.content, self.version)
    }

    /// `POST .../crm/bulk/{v}/write`: creates a Bulk Write job.
    pub fn bulk_write(&self) -> String {
        format!("{}/crm/bulk/{}/write", self.domain, self.version)
    }

    /// `GET .../crm/bulk/{v}/write/{job id}`: a Bulk Write job's status.
    pub fn bulk_write_job(&self, job_id: &str) -> String {
        format!("{}/{}", self.bulk_write(), url_component(job_id))
    }

    /// The URL of a Bulk Write job's result, from the `download_url` its status gave: a
    /// path is on the API domain; a full URL must be https (or loopback http) on one of
    /// Zoho's hosts or the API or content domain's host, since the token goes with it.
    pub fn result_url(&self, download_url: &str) -> Result<String, String> {
        if download_url.starts_with('/') {
            return Ok(format!("{}{download_url}", self.domain));
        }
        let parsed = Url::parse(download_url)
            .map_err(|e| format!("the job's download_url {download_url:?} is not a URL: {e}"))?;
        check_base_url("the job's download_url", download_url).map_err(|e| e.to_string())?;
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let ours = [&self.domain, &self.content]
            .iter()
            .filter_map(|u| Url::parse(u).ok())
            .any(|u| u.host_str().is_some_and(|h| h.eq_ignore_ascii_case(&host)));
        if ours || is_zoho_host(&host) {
            Ok(download_url.to_string())
        } else {
            Err(format!(
                "the job's download_url points at {host}, which is not Zoho's: the access token is not sent there"
            ))
        }
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// `POST .../crm/{v}/{module}/actions/mass_update`.
    pub fn mass_update(&self, module: &str) -> String {
        format!("{}/actions/mass_update", self.records(module))
    }

    /// `.../crm/{v}/{module}`: Update Records (PUT) and Get Records (GET).
    pub fn records(&self, module: &str) -> String {
        format!("{}/crm/{}/{module}", self.domain, self.version)
    }

    /// `POST .../crm/{v}/{module}/upsert`: Upsert Records.
    pub fn upsert(&self, module: &str) -> String {
        format!("{}/upsert", self.records(module))
    }

    /// `DELETE .../crm/{v}/{module}?ids=...`: Delete Records.
    pub fn delete_records(&self, module: &str, ids: &[i64]) -> String {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!("{}?ids={}", self.records(module), ids.join(","))
    }

    /// `GET .../crm/{v}/{module}?ids=...&fields=...`: the current values of records.
    pub fn get_records(&self, module: &str, ids: &[i64], fields: &[String]) -> String {
        let ids: Vec<String> = ids.iter().map(i64::to_string).collect();
        format!(
            "{}?ids={}&fields={}",
            self.records(module),
            ids.join(","),
            fields.join(",")
        )
    }

    /// `GET .../crm/{v}/{module}?fields=...&per_page=N` and `&page=N` or `&page_token=T`:
    /// one page of a listing of every record.
    pub fn list_records(
        &self,
        module: &str,
        fields: &[String],
        per_page: usize,
        at: &PageAt,
    ) -> String {
        let at = match at {
            PageAt::Number(page) => format!("page={page}"),
            PageAt::Token(token) => format!("page_token={}", url_component(token)),
        };
        format!(
            "{}?fields={}&per_page={per_page}&{at}",
            self.records(module),
            fields.join(",")
        )
    }

    /// `POST .../crm/{v}/coql`.
    pub fn coql(&self) -> String {
        format!("{}/crm/{}/coql", self.domain, self.version)
    }

    /// `GET .../crm/{v}/settings/fields` (with `module=` as a query parameter).
    pub fn fields(&self) -> String {
        format!("{}/crm/{}/settings/fields", self.domain, self.version)
    }

    /// `GET .../crm/{v}/settings/modules`.
    pub fn modules(&self) -> String {
        format!("{}/crm/{}/settings/modules", self.domain, self.version)
    }
}

/// The content domain (Bulk Write uploads) of an API domain: `https://www.zohoapis.X` ->
/// `https://content.zohoapis.X`; any other host serves both (a loopback mock).
fn content_domain_of(domain: &str) -> String {
    match domain.strip_prefix("https://www.zohoapis.") {
        Some(rest) => format!("https://content.zohoapis.{rest}"),
        None => domain.to_string(),
    }
}

/// Whether `host` is one of Zoho's: a name under `zoho.*`, `zohoapis.*` or `zohocloud.*`
/// of a data centre (download hosts such as `download-accl.zoho.com`).
fn is_zoho_host(host: &str) -> bool {
    DATA_CENTRES.iter().any(|(_, accounts, api)| {
        [accounts, api].iter().any(|base| {
            let suffix = base
                .trim_start_matches("https://")
                .split_once('.')
                .map_or("", |(_, rest)| rest);
            !suffix.is_empty() && host.ends_with(&format!(".{suffix}"))
        })
    })
}

/// A Bulk Write upload: the zip, its file name, and the org it is for (`X-CRM-ORG`).
#[derive(Debug, Clone)]
pub struct Upload {
    pub org_id: String,
    pub file_name: String,
    pub zip: bytes::Bytes,
}

/// Which page of a listing to ask for: by number (up to 2,000 records), or by the token the
/// previous page gave.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PageAt {
    Number(usize),
    Token(String),
}

/// `text` percent-encoded for a query string (a page token is opaque: it may hold `+`, `=`
/// or `/`).
fn url_component(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// Checks a base URL: https, or http to a loopback address only (the embedded mock), so a
/// token is never sent in clear over a network.
pub fn check_base_url(what: &str, url: &str) -> Result<String, UsageError> {
    let parsed = Url::parse(url).map_err(|e| UsageError::new(format!("{what} {url:?}: {e}")))?;
    let loopback = match parsed.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    match parsed.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(UsageError::new(format!(
                "{what} {url:?} is plain http to a non-loopback host: tokens would cross the network in clear; use https"
            )))
        }
        other => {
            return Err(UsageError::new(format!(
                "{what} {url:?}: scheme {other} is not http(s)"
            )))
        }
    }
    Ok(url.trim_end_matches('/').to_string())
}

/// Checks the `api_domain` a token answer names: a base URL as [`check_base_url`] wants
/// it, on one of Zoho's API domains (or loopback, for the mock). The accounts server
/// decides where every record is sent, so a domain that is not Zoho's is refused rather
/// than trusted; `--api-domain` chooses one explicitly.
pub fn check_token_api_domain(url: &str) -> Result<String, UsageError> {
    let what = "the token answer's api_domain";
    let checked = check_base_url(what, url)?;
    let parsed =
        Url::parse(&checked).map_err(|e| UsageError::new(format!("{what} {url:?}: {e}")))?;
    let zoho = match parsed.host() {
        Some(url::Host::Domain(host)) => {
            let host = host.to_ascii_lowercase();
            host == "localhost"
                || DATA_CENTRES.iter().any(|(_, _, api)| {
                    let suffix = api.trim_start_matches("https://www.");
                    host == suffix || host.ends_with(&format!(".{suffix}"))
                })
        }
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if !zoho {
        return Err(UsageError::new(format!(
            "{what} {checked} is not one of Zoho's API domains (www.zohoapis.com, .eu, .in, .com.au, .jp, .com.cn, .ca, .sa); refusing to send records there. Pass --api-domain to choose the API domain yourself"
        )));
    }
    Ok(checked)
}

/// The one HTTP client: connection reuse (keep-alive pool sized for the worker count) and
/// timeouts. It follows no redirect: a redirect would carry the Authorization header, or
/// the token request's client secret and refresh token, to wherever the answer points,
/// perhaps another host or plain http. Every caller turns a 3xx answer into an error
/// naming the target instead (see [`redirect_target`]).
/// Installs ring as the process's rustls crypto provider, once (a provider installed
/// before is kept). reqwest is built without a provider of its own (`rustls-no-provider`:
/// its default, aws-lc-rs, made a fresh build a minute and more slower; README, "Build
/// time"), so this runs before any client is built: [`http_client`] calls it, and so must
/// code that builds a `reqwest::Client` itself (the tests' raw clients).
pub fn install_crypto_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

pub fn http_client(timeout: Duration, pool: usize) -> reqwest::Client {
    install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .pool_max_idle_per_host(pool.max(1))
        .user_agent(concat!("massup/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds with static settings")
}

/// The Authorization header, marked sensitive so that HTTP-level debug output (hyper, h2)
/// shows it redacted even if someone turns their logging on.
fn authorization(token: &auth::Secret) -> reqwest::header::HeaderValue {
    let mut value =
        reqwest::header::HeaderValue::from_str(&format!("Zoho-oauthtoken {}", token.expose()))
            .unwrap_or_else(|_| {
                reqwest::header::HeaderValue::from_static("Zoho-oauthtoken invalid")
            });
    value.set_sensitive(true);
    value
}

/// Where a redirect answer points, for a message: the `Location` header resolved against
/// the request's URL, with scheme, host, port and path but never its query, fragment or
/// user info (they may carry a token), and redacted.
pub fn redirect_target(response: &reqwest::Response) -> String {
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok());
    let Some(mut url) = location.and_then(|l| response.url().join(l.trim()).ok()) else {
        return "a place it did not name (no usable Location header)".to_string();
    };
    url.set_query(None);
    url.set_fragment(None);
    let _ = url.set_username("");
    let _ = url.set_password(None);
    crate::redact::redact(url.as_str()).into_owned()
}

/// The most of an answer to a record call (mass_update, Update Records, Get Records, COQL)
/// or a metadata call that massup reads. Zoho's largest answers are far below it: 500
/// mass_update entries are about 160 KB, 2,000 COQL rows of 50 fields a few MB, a module's
/// field metadata under 2 MB. Above it the answer is not Zoho's (a broken proxy, a hostile
/// server streaming without end: one drove a process to 9.8 GB in 23 s before this cap), so
/// reading stops there and the call fails as a transport error, to be retried.
pub const MAX_ANSWER_BYTES: usize = 16 << 20;

/// The most of a token endpoint's answer massup reads: Zoho's is under 300 bytes (a token,
/// its lifetime, the API domain); 64 KiB leaves room for any error page.
pub const MAX_TOKEN_ANSWER_BYTES: usize = 64 << 10;

/// Why an answer's body could not be had.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Longer than `cap`: reading stopped there (or at once, when Content-Length said so).
    #[error("the answer is larger than {} (massup reads at most that of {what}), so it was not read further", size(*.cap))]
    TooLarge { cap: usize, what: &'static str },
    /// The connection failed while the body came, or the call's deadline passed.
    #[error("{0}")]
    Cut(String),
}

/// `16 MiB`, `64 KiB`: a cap as people read it.
fn size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} bytes"),
    }
}

/// Reads `response`'s body chunk by chunk, stopping at `cap` bytes, so that memory stays
/// flat whatever a server sends. The call's deadline (the client's total timeout, which
/// covers the body too) still applies to every chunk. `what` names the kind of answer in
/// the error.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
    what: &'static str,
) -> Result<bytes::Bytes, BodyError> {
    if response
        .content_length()
        .is_some_and(|declared| declared > cap as u64)
    {
        return Err(BodyError::TooLarge { cap, what });
    }
    let mut body = bytes::BytesMut::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > cap {
                    return Err(BodyError::TooLarge { cap, what });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body.freeze()),
            Err(e) => return Err(BodyError::Cut(describe(&e))),
        }
    }
}

/// What came back from one HTTP attempt, before interpretation.
#[derive(Debug)]
pub enum Exchange {
    Answered {
        status: u16,
        body: bytes::Bytes,
        credits_remaining: Option<u64>,
        retry_after: Option<Duration>,
    },
    /// A redirect (3xx), not followed and never to be: it would carry the record data (and
    /// the token to the same origin) elsewhere. The caller stops the run as fatal, because
    /// every later call would be redirected too and the configured API domain is evidently
    /// not Zoho's. `location` is where it points (see [`redirect_target`]).
    Redirected { status: u16, location: String },
    /// No HTTP answer: connection refused or dropped, timeout, body cut off.
    NoAnswer { reason: String },
}

/// Sends one request (a JSON body: a mass_update POST, an Update Records PUT; or a Bulk
/// Write upload's multipart form) and reads what came back, without interpreting it.
pub async fn send_call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &auth::Secret,
    body: String,
    upload: Option<&Upload>,
) -> (Exchange, Duration) {
    let started = Instant::now();
    let request = http
        .request(method, url)
        .header(reqwest::header::AUTHORIZATION, authorization(token));
    let request = match upload {
        None => request
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body),
        Some(upload) => {
            let part = reqwest::multipart::Part::stream(upload.zip.clone())
                .file_name(upload.file_name.clone())
                .mime_str("application/zip")
                .expect("a valid mime type");
            request
                .header("feature", "bulk-write")
                .header("X-CRM-ORG", upload.org_id.as_str())
                .multipart(reqwest::multipart::Form::new().part("file", part))
        }
    };
    let sent = request.send().await;
    let exchange = match sent {
        Err(e) => Exchange::NoAnswer {
            reason: describe(&e),
        },
        Ok(response) => {
            let status = response.status().as_u16();
            if response.status().is_redirection() {
                let location = redirect_target(&response);
                return (Exchange::Redirected { status, location }, started.elapsed());
            }
            let headers = response.headers();
            let credits_remaining = headers
                .get("x-api-credits-remaining")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok());
            let retry_after = headers
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| s.is_finite() && *s >= 0.0)
                .map(|s| Duration::from_secs_f64(s.min(3600.0)));
            match read_capped(response, MAX_ANSWER_BYTES, "an answer to a record call").await {
                Ok(body) => Exchange::Answered {
                    status,
                    body,
                    credits_remaining,
                    retry_after,
                },
                Err(e @ BodyError::TooLarge { .. }) => Exchange::NoAnswer {
                    reason: format!("HTTP {status}: {e}"),
                },
                Err(BodyError::Cut(e)) => Exchange::NoAnswer {
                    reason: format!("HTTP {status} but the body was cut off: {e}"),
                },
            }
        }
    };
    (exchange, started.elapsed())
}

fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "connection failed"
    };
    format!("{kind}: {}", auth::without_url(error))
}

/// Why field metadata (or the module list) could not be had; each names its real cause.
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    /// Zoho does not know the module; the caller may suggest the nearest name.
    #[error("{module} is not a module of this org (Zoho answered {code}); module API names are plural and case-sensitive, e.g. Leads, Contacts, Deals")]
    UnknownModule { module: String, code: String },
    /// The token was refused: it, its scopes or its data centre are wrong.
    #[error("Zoho refused the access token at {domain} ({code}: {message}): check ZOHO_ACCESS_TOKEN (or the refresh token) and its scopes, and that the org's data centre is the one used (--dc, --api-domain)")]
    Refused {
        domain: String,
        code: String,
        message: String,
    },
    #[error("{0}")]
    Other(String),
}

/// `GET {api}/crm/{version}/settings/fields?module=M`: the metadata used to coerce and
/// check values before any call is sent.
pub async fn fetch_fields(
    http: &reqwest::Client,
    api_domain: &str,
    api_version: &str,
    module: &str,
    token: &auth::Secret,
) -> Result<String, MetadataError> {
    let url = Endpoints::new(api_domain, api_version).fields();
    get_metadata(
        http,
        api_domain,
        &url,
        &[("module", module)],
        token,
        &format!("field metadata for {module}"),
    )
    .await
    .map_err(|e| match e {
        MetadataError::Other(message) if message.contains("INVALID_MODULE") => {
            MetadataError::UnknownModule {
                module: module.to_string(),
                code: "INVALID_MODULE".into(),
            }
        }
        other => other,
    })
}

/// `GET {api}/crm/{version}/settings/modules`: the org's module API names.
pub async fn fetch_module_names(
    http: &reqwest::Client,
    api_domain: &str,
    api_version: &str,
    token: &auth::Secret,
) -> Result<Vec<String>, MetadataError> {
    let url = Endpoints::new(api_domain, api_version).modules();
    let body = get_metadata(http, api_domain, &url, &[], token, "the module list").await?;
    #[derive(serde::Deserialize)]
    struct Modules {
        modules: Vec<Module>,
    }
    #[derive(serde::Deserialize)]
    struct Module {
        api_name: String,
    }
    let modules: Modules = serde_json::from_str(&body).map_err(|e| {
        MetadataError::Other(format!("the module list Zoho sent cannot be read: {e}"))
    })?;
    Ok(modules.modules.into_iter().map(|m| m.api_name).collect())
}

async fn get_metadata(
    http: &reqwest::Client,
    api_domain: &str,
    url: &str,
    query: &[(&str, &str)],
    token: &auth::Secret,
    what: &str,
) -> Result<String, MetadataError> {
    let response = http
        .get(url)
        .query(query)
        .header(reqwest::header::AUTHORIZATION, authorization(token))
        .send()
        .await
        .map_err(|e| {
            MetadataError::Other(format!("cannot fetch {what} from {url}: {}", describe(&e)))
        })?;
    let status = response.status();
    if status.is_redirection() {
        return Err(MetadataError::Other(format!(
            "fetching {what}: {url} answered HTTP {} redirecting to {}; massup follows no redirect (it would carry the access token there); check --api-domain / --dc",
            status.as_u16(),
            redirect_target(&response)
        )));
    }
    let body = read_capped(response, MAX_ANSWER_BYTES, "a metadata answer")
        .await
        .map_err(|e| MetadataError::Other(format!("cannot read {what} from {url}: {e}")))?;
    let body = server_json_text(&body);
    if !status.is_success() {
        let answer = response::parse_body(status.as_u16(), body.as_bytes());
        let (code, message) = match answer {
            response::CallAnswer::Request { code, message } => (code, message),
            _ => (format!("HTTP {}", status.as_u16()), String::new()),
        };
        let refused = status.as_u16() == 401
            || matches!(
                code.as_str(),
                "INVALID_TOKEN"
                    | "AUTHENTICATION_FAILURE"
                    | "OAUTH_SCOPE_MISMATCH"
                    | "NO_PERMISSION"
            );
        if refused {
            return Err(MetadataError::Refused {
                domain: api_domain.to_string(),
                code,
                message: crate::logging::server_text(&message).into_owned(),
            });
        }
        let message = format!(
            "fetching {what} failed ({code}: {message}); pass --fields FILE to plan without it"
        );
        return Err(MetadataError::Other(
            crate::logging::server_text(&message).into_owned(),
        ));
    }
    Ok(body)
}

/// A metadata answer as massup keeps it (stored with a run, shown by `fields`): every
/// string in it redacted and its control characters escaped, since a label or a picklist
/// value is shown on the terminal and a hostile server may put a secret or an escape
/// sequence there. Text that is not JSON is kept as text, made safe the same way (its
/// reader refuses it and may quote it).
fn server_json_text(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(mut value) => {
            if !make_strings_safe(&mut value) {
                return text.into_owned();
            }
            value.to_string()
        }
        Err(_) => crate::logging::server_text(&text).into_owned(),
    }
}

/// Makes every string (and key) of `value` safe in place; whether anything changed.
fn make_strings_safe(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    use std::borrow::Cow;
    match value {
        Value::String(text) => match crate::logging::server_text(text) {
            Cow::Borrowed(_) => false,
            Cow::Owned(safe) => {
                *text = safe;
                true
            }
        },
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, item| make_strings_safe(item) | changed),
        Value::Object(map) => {
            let unsafe_keys = map
                .keys()
                .any(|k| matches!(crate::logging::server_text(k), Cow::Owned(_)));
            let mut changed = false;
            if unsafe_keys {
                let old = std::mem::take(map);
                for (key, value) in old {
                    map.insert(crate::logging::server_text(&key).into_owned(), value);
                }
                changed = true;
            }
            map.values_mut()
                .fold(changed, |changed, item| make_strings_safe(item) | changed)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_to_loopback() {
        assert!(check_base_url("--api-domain", "https://www.zohoapis.eu").is_ok());
        assert!(check_base_url("--api-domain", "http://127.0.0.1:8080/").is_ok());
        assert!(check_base_url("--api-domain", "http://[::1]:8080").is_ok());
        assert!(check_base_url("--api-domain", "http://localhost:1").is_ok());
        let err = check_base_url("--api-domain", "http://www.zohoapis.com").unwrap_err();
        assert!(err.to_string().contains("in clear"));
        assert!(check_base_url("--api-domain", "ftp://x").is_err());
    }

    #[test]
    fn a_token_may_name_only_zohos_api_domains() {
        assert!(check_token_api_domain("https://www.zohoapis.eu").is_ok());
        assert!(check_token_api_domain("https://zohoapis.com.au").is_ok());
        assert!(check_token_api_domain("http://127.0.0.1:9").is_ok());
        for bad in [
            "https://www.zohoapis.eu.evil.example",
            "https://evil.example",
            "https://notzohoapis.com",
            "http://www.zohoapis.com",
        ] {
            assert!(check_token_api_domain(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn data_centres_resolve() {
        assert_eq!(data_centre("EU").unwrap().1, "https://www.zohoapis.eu");
        assert_eq!(
            data_centre("ca").unwrap().0,
            "https://accounts.zohocloud.ca"
        );
        assert!(data_centre("mars").is_err());
    }
}
