//! Logs and traces for `ArqonBus` binaries and tests: JSON or pretty logs plus OpenTelemetry spans
//! exported as OTLP/HTTP protobuf, both from `[telemetry]` (`specs/observability.md`).
//!
//! [`subscriber`] builds one `tracing` subscriber: an `EnvFilter`ed log layer and an OpenTelemetry
//! layer (`tracing-opentelemetry`) that sees the `arqon_*` spans down to `debug` when exporting, and
//! otherwise only what the log level shows (it then only gives log lines their `trace_id`). Spans
//! are batched on the SDK's own thread; the exporter posts with the small blocking HTTP/1.1 client
//! in [`http`], so no HTTP client stack is pulled in beside the one axum already has.

mod http;
pub mod trace;

use std::time::Duration;

use arqon_config::{LogFormat, TelemetryConfig};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing_subscriber::filter::{EnvFilter, Targets};
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::{Layer as _, Registry};

pub use http::BlockingHttpClient;
/// The writer factory [`subscriber`] takes (re-exported for callers that capture logs).
pub use tracing_subscriber::fmt::MakeWriter;

/// The OTLP/HTTP path for traces, appended to a base endpoint.
const TRACES_PATH: &str = "/v1/traces";
/// Spans held for export; more are dropped rather than slowing the data path.
const MAX_QUEUED_SPANS: usize = 2048;
/// How long one export request may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why the telemetry could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// `log_level` is not a tracing filter.
    #[error("telemetry.log_level {level:?} is not a tracing filter: {reason}")]
    Filter {
        /// The configured value.
        level: String,
        /// The parser's complaint.
        reason: String,
    },
    /// `otlp_endpoint` is not a plain `http://` URL.
    #[error("telemetry.otlp_endpoint {endpoint:?}: {reason}")]
    Endpoint {
        /// The configured value.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    /// A global subscriber is already installed.
    #[error("cannot install the global subscriber: {0}")]
    Install(String),
}

/// The tracer provider behind the subscriber; [`Telemetry::shutdown`] flushes pending spans.
#[derive(Debug, Clone)]
pub struct Telemetry {
    provider: SdkTracerProvider,
    exporting: bool,
}

impl Telemetry {
    /// Whether spans are exported (an `otlp_endpoint` is configured).
    pub fn exporting(&self) -> bool {
        self.exporting
    }

    /// Exports every finished span now.
    pub fn flush(&self) {
        if let Err(error) = self.provider.force_flush() {
            tracing::warn!(%error, "span flush failed");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::debug!(%error, "tracer shutdown");
        }
    }
}

/// The full OTLP/HTTP traces URL for a configured endpoint: `http://` only, `/v1/traces` appended
/// unless it is already there.
pub fn traces_url(endpoint: &str) -> Result<String, TelemetryError> {
    let refuse = |reason: &str| TelemetryError::Endpoint {
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    let rest = endpoint
        .strip_prefix("http://")
        .ok_or_else(|| refuse("only http:// is supported; terminate TLS at the collector"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() {
        return Err(refuse("no host"));
    }
    let trimmed = endpoint.trim_end_matches('/');
    Ok(if trimmed.ends_with(TRACES_PATH) {
        trimmed.to_owned()
    } else {
        format!("{trimmed}{TRACES_PATH}")
    })
}

fn tracer_provider(
    config: &TelemetryConfig,
    service: &str,
) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(service.to_owned())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(BlockingHttpClient::new(EXPORT_TIMEOUT))
            .with_endpoint(traces_url(endpoint)?)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let batch = BatchConfigBuilder::default()
            .with_max_queue_size(MAX_QUEUED_SPANS)
            .build();
        builder = builder.with_span_processor(
            BatchSpanProcessor::builder(exporter)
                .with_batch_config(batch)
                .build(),
        );
    }
    Ok(builder.build())
}

/// `ArqonBus`'s own targets, at `level` and above.
fn own_targets(level: tracing::Level) -> Targets {
    Targets::new()
        .with_target("arqon_shield", level)
        .with_target("arqon_brain", level)
        .with_target("arqon_telemetry", level)
}

/// What the OpenTelemetry layer sees. Exporting: `ArqonBus`'s spans down to `debug` (the message
/// path's spans are `debug`) and its events at `info` and above (they become span events; the
/// per-message `debug` lines would only add weight). Not exporting, the layer only gives log lines
/// their `trace_id`, so it sees what the log filter `log_level` lets through: at the default `info`
/// the message path builds no span at all.
fn otel_filter<S>(
    config: &TelemetryConfig,
) -> Result<Box<dyn tracing_subscriber::layer::Filter<S> + Send + Sync>, TelemetryError>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    if config.otlp_endpoint.is_none() {
        return Ok(Box::new(log_filter(config)?));
    }
    let spans = own_targets(tracing::Level::DEBUG);
    Ok(Box::new(tracing_subscriber::filter::filter_fn(
        move |meta| {
            spans.would_enable(meta.target(), meta.level())
                && (meta.is_span() || *meta.level() <= tracing::Level::INFO)
        },
    )))
}

fn log_filter(config: &TelemetryConfig) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::try_new(&config.log_level).map_err(|e| TelemetryError::Filter {
        level: config.log_level.clone(),
        reason: e.to_string(),
    })
}

/// A subscriber for `config`: logs to `writer` in the configured format and level, spans to the
/// OTLP endpoint when one is configured. `service` names the resource (`service.name`).
pub fn subscriber<W>(
    config: &TelemetryConfig,
    service: &str,
    writer: W,
    ansi: bool,
) -> Result<(Box<dyn tracing::Subscriber + Send + Sync>, Telemetry), TelemetryError>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = log_filter(config)?;
    let provider = tracer_provider(config, service)?;
    let tracer = provider.tracer("arqonbus");
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(otel_filter(config)?);
    let logs = match config.log_format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(true)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    };
    let subscriber = Registry::default().with(otel).with(logs);
    let telemetry = Telemetry {
        exporting: config.otlp_endpoint.is_some(),
        provider,
    };
    Ok((Box::new(subscriber), telemetry))
}

/// Installs [`subscriber`] as the process-wide default, logging to stderr.
pub fn init(
    config: &TelemetryConfig,
    service: &str,
    ansi: bool,
) -> Result<Telemetry, TelemetryError> {
    let (subscriber, telemetry) = subscriber(config, service, std::io::stderr, ansi)?;
    tracing::subscriber::set_global_default(subscriber)
        .map_err(|e| TelemetryError::Install(e.to_string()))?;
    Ok(telemetry)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_url_appends_the_traces_path_once() {
        assert_eq!(
            traces_url("http://collector:4318").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/v1/traces").unwrap(),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn traces_url_refuses_https_and_hostless_urls() {
        assert!(matches!(
            traces_url("https://collector:4318"),
            Err(TelemetryError::Endpoint { .. })
        ));
        assert!(matches!(
            traces_url("http:///v1/traces"),
            Err(TelemetryError::Endpoint { .. })
        ));
        assert!(matches!(
            traces_url("collector:4318"),
            Err(TelemetryError::Endpoint { .. })
        ));
    }

    #[test]
    fn a_bad_log_level_is_a_typed_error() {
        let config = TelemetryConfig {
            log_level: "info,=[".to_owned(),
            ..TelemetryConfig::default()
        };
        assert!(matches!(
            subscriber(&config, "test", std::io::sink, false),
            Err(TelemetryError::Filter { .. })
        ));
    }
}
