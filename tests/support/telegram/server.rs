//! The HTTP side of the fake: accepting connections, recording requests and
//! choosing each response.

use std::convert::Infallible;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use super::super::markdown;
use super::{Reply, Shared, State, TelegramRequest, MAX_MESSAGE_LENGTH};

/// What the server does with one request.
enum Outcome {
    Respond(StatusCode, Value),
    Hang,
    Panic(String),
}

pub(super) async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::from_std(listener)
        .unwrap_or_else(|error| panic!("fake Telegram could not register its socket: {error}"));
    let mut connections = JoinSet::new();

    loop {
        tokio::select! {
            // A dropped sender also ends the server.
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&shared)));
                }
                Err(error) => {
                    eprintln!("fake Telegram: accepting a connection failed: {error}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(joined) = connections.join_next() => note_panic(&shared, joined),
        }
    }

    connections.abort_all();
    while let Some(joined) = connections.join_next().await {
        note_panic(&shared, joined);
    }
}

fn note_panic(shared: &Shared, joined: Result<(), tokio::task::JoinError>) {
    let Err(error) = joined else { return };
    if !error.is_panic() {
        return;
    }
    let payload = error.into_panic();
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic payload that is not text)".to_string()
    };
    shared.record_panic(message);
}

async fn serve_connection(stream: tokio::net::TcpStream, shared: Arc<Shared>) {
    let service = service_fn(move |request| handle(request, Arc::clone(&shared)));
    // A client that disconnects mid-request is not the test's concern.
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .await;
}

async fn handle(
    request: Request<Incoming>,
    shared: Arc<Shared>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let received_at = Instant::now();
    let http_method = request.method().clone();
    let path = request.uri().path().to_string();
    let body = match request.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => Bytes::new(),
    };

    let (token, api_method) = split_path(&path).unwrap_or_default();
    let json_body: Result<Value, serde_json::Error> = serde_json::from_slice(&body);
    let field = |name: &str| {
        json_body
            .as_ref()
            .ok()
            .and_then(|value| value.get(name))
            .and_then(text_of)
    };
    let mut record = TelegramRequest {
        http_method: http_method.to_string(),
        path: path.clone(),
        api_method: api_method.to_string(),
        token: token.to_string(),
        chat_id: field("chat_id"),
        text: field("text"),
        parse_mode: field("parse_mode"),
        body: String::from_utf8_lossy(&body).into_owned(),
        received_at,
        status: None,
        description: None,
    };

    let outcome = {
        let mut state = shared.lock();
        let outcome = decide(
            &mut state,
            &shared.token,
            &http_method,
            &record,
            json_body.as_ref().err(),
        );
        if let Outcome::Respond(status, value) = &outcome {
            record.status = Some(status.as_u16());
            record.description = value
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
        }
        state.requests.push(record);
        outcome
    };
    shared.changed.notify_waiters();

    match outcome {
        Outcome::Respond(status, value) => Ok(json_response(status, &value)),
        Outcome::Hang => std::future::pending().await,
        Outcome::Panic(message) => panic!("{message}"),
    }
}

/// Picks the response to one request. The path, the token and the method
/// are checked first, then a queued or default reply applies.
fn decide(
    state: &mut State,
    expected_token: &str,
    http_method: &Method,
    request: &TelegramRequest,
    json_error: Option<&serde_json::Error>,
) -> Outcome {
    if request.api_method.is_empty() {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    if request.token != expected_token {
        return error(StatusCode::UNAUTHORIZED, "Unauthorized");
    }
    // Bot API method names are case-insensitive.
    match request.api_method.to_ascii_lowercase().as_str() {
        "getme" => {
            return Outcome::Respond(
                StatusCode::OK,
                json!({ "ok": true, "result": bot_user(expected_token) }),
            )
        }
        "sendmessage" => {}
        _ => return error(StatusCode::NOT_FOUND, "Not Found"),
    }

    // Telegram also takes GET and form bodies. The daemon is expected to
    // POST JSON, so anything else is a bug worth a clear message.
    if http_method != Method::POST {
        return error(
            StatusCode::BAD_REQUEST,
            &format!(
                "Bad Request: the fake Bot API expects sendMessage as POST, got {http_method}"
            ),
        );
    }
    if let Some(json_error) = json_error {
        return error(
            StatusCode::BAD_REQUEST,
            &format!("Bad Request: the fake Bot API could not parse the JSON body: {json_error}"),
        );
    }

    let reply = state
        .replies
        .pop_front()
        .unwrap_or_else(|| state.default_reply.clone());
    match reply {
        Reply::Ok => accept_message(state, expected_token, request),
        Reply::ServerError => error(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error"),
        Reply::TooManyRequests { retry_after } => Outcome::Respond(
            StatusCode::TOO_MANY_REQUESTS,
            json!({
                "ok": false,
                "error_code": 429,
                "description": format!("Too Many Requests: retry after {retry_after}"),
                "parameters": { "retry_after": retry_after },
            }),
        ),
        Reply::CantParseEntities(detail) => error(
            StatusCode::BAD_REQUEST,
            &format!("Bad Request: can't parse entities: {detail}"),
        ),
        Reply::MessageTooLong => error(StatusCode::BAD_REQUEST, "Bad Request: message is too long"),
        Reply::Unauthorized => error(StatusCode::UNAUTHORIZED, "Unauthorized"),
        Reply::Hang => Outcome::Hang,
        Reply::Panic(message) => Outcome::Panic(message),
    }
}

/// Checks a `sendMessage` request as Telegram does and accepts it when it is
/// valid.
///
/// NOTE: Telegram measures the 4096 limit after removing markup. The fake
/// measures the text as sent, which is stricter, so a daemon that passes
/// here also passes there.
fn accept_message(state: &mut State, token: &str, request: &TelegramRequest) -> Outcome {
    let Some(chat_id) = request
        .chat_id
        .as_deref()
        .filter(|chat_id| !chat_id.is_empty())
    else {
        return error(StatusCode::BAD_REQUEST, "Bad Request: chat_id is empty");
    };
    let Some(text) = request
        .text
        .as_deref()
        .filter(|text| !text.trim().is_empty())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "Bad Request: message text is empty",
        );
    };

    let mut visible_text = text.to_string();
    if state.validate {
        if text.encode_utf16().count() > MAX_MESSAGE_LENGTH {
            return error(StatusCode::BAD_REQUEST, "Bad Request: message is too long");
        }
        match request.parse_mode.as_deref() {
            None | Some("") => {}
            Some("MarkdownV2") => match markdown::check(text) {
                Ok(plain) => visible_text = plain,
                Err(problem) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("Bad Request: can't parse entities: {problem}"),
                    );
                }
            },
            // NOTE: the legacy Markdown and HTML modes are accepted without a
            // check, because the daemon sends MarkdownV2.
            Some("Markdown") | Some("HTML") => {}
            Some(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Bad Request: unsupported parse_mode",
                )
            }
        }
    }

    let message_id = state.next_message_id;
    state.next_message_id += 1;
    let chat = match chat_id.parse::<i64>() {
        Ok(number) => json!(number),
        Err(_) => json!(chat_id),
    };
    let date = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs());
    Outcome::Respond(
        StatusCode::OK,
        json!({
            "ok": true,
            "result": {
                "message_id": message_id,
                "from": bot_user(token),
                "chat": { "id": chat, "type": "private" },
                "date": date,
                "text": visible_text,
            },
        }),
    )
}

fn error(status: StatusCode, description: &str) -> Outcome {
    Outcome::Respond(
        status,
        json!({ "ok": false, "error_code": status.as_u16(), "description": description }),
    )
}

/// Builds the bot user that `getMe` and `sendMessage` return. Its id is the
/// number before the colon in the token, as in real tokens.
fn bot_user(token: &str) -> Value {
    let id = token
        .split_once(':')
        .and_then(|(id, _)| id.parse::<i64>().ok())
        .unwrap_or(0);
    json!({ "id": id, "is_bot": true, "first_name": "TPM test bot", "username": "tpm_test_bot" })
}

/// Splits `/bot<token>/<method>` into token and method.
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix("/bot")?;
    let (token, method) = rest.split_once('/')?;
    if token.is_empty() || method.is_empty() || method.contains('/') {
        return None;
    }
    Some((token, method))
}

/// Returns a JSON string as is and a number as its decimal text.
fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}
