//! A fake Telegram Bot API on 127.0.0.1 for the alert tests.
//!
//! [`FakeTelegram::start`] binds a free loopback port and serves
//! `POST /bot<token>/sendMessage` with a JSON body (`chat_id`, `text`,
//! optional `parse_mode`) and `getMe`, and responds in the Bot API's shapes:
//! `{"ok":true,"result":{...}}` on success and
//! `{"ok":false,"error_code":N,"description":"..."}` on failure. Every request
//! is recorded, whatever the response.
//!
//! By default a message is checked the way Telegram checks it: a wrong token
//! gets 401, a text over 4096 UTF-16 code units gets 400 `message is too
//! long`, and invalid MarkdownV2 gets 400 `can't parse entities` with the
//! character and byte offset. Tests can queue other replies (server errors,
//! rate limits, a request that never gets a response) with
//! [`FakeTelegram::push_reply`].
//!
//! The server runs on its own thread and tokio runtime, so it keeps
//! responding while a test blocks, for example on a daemon child process.

mod server;

use std::collections::VecDeque;
use std::fmt;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tokio::sync::{oneshot, Notify};

use super::{patience, PATIENCE_VAR};

/// Bot token the fake accepts unless a test starts it with another one.
pub const DEFAULT_TOKEN: &str = "123456789:TPM-fake-bot-token-for-tests";

/// Maximum length of a message text that Telegram accepts, in UTF-16 code
/// units.
pub const MAX_MESSAGE_LENGTH: usize = 4096;

/// Maximum number of characters of a message text shown in a failure
/// message.
const TEXT_EXCERPT_CHARS: usize = 300;

/// How the fake responds to one `sendMessage` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Check the request as Telegram does, then accept it with a new
    /// `message_id`, or reject it with the error Telegram would return.
    Ok,
    /// 500 `Internal Server Error`.
    ServerError,
    /// 429 `Too Many Requests: retry after N`, with
    /// `parameters.retry_after` = N seconds.
    TooManyRequests { retry_after: u64 },
    /// 400 `Bad Request: can't parse entities: <detail>`, whatever the text.
    CantParseEntities(String),
    /// 400 `Bad Request: message is too long`, whatever the text.
    MessageTooLong,
    /// 401 `Unauthorized`, whatever the token.
    Unauthorized,
    /// Accept the request and never respond. The connection closes when
    /// the fake is dropped or shut down.
    Hang,
    /// Panic inside the request handler with this message, to check that a
    /// broken fake fails the test instead of passing silently.
    Panic(String),
}

/// One request the fake received, with the response it sent.
#[derive(Debug, Clone)]
pub struct TelegramRequest {
    /// HTTP method, such as `POST`.
    pub http_method: String,
    /// Request path, such as `/bot123:abc/sendMessage`.
    pub path: String,
    /// Bot API method from the path, such as `sendMessage`, or empty when
    /// the path is not `/bot<token>/<method>`.
    pub api_method: String,
    /// Token from the path.
    pub token: String,
    /// `chat_id` from the JSON body, as text (Telegram accepts a number or a
    /// string).
    pub chat_id: Option<String>,
    pub text: Option<String>,
    pub parse_mode: Option<String>,
    /// The raw body.
    pub body: String,
    pub received_at: Instant,
    /// HTTP status of the response, or None for a request left hanging.
    pub status: Option<u16>,
    /// `description` of an error response.
    pub description: Option<String>,
}

impl TelegramRequest {
    /// Reports whether this is a `sendMessage` request.
    pub fn is_message(&self) -> bool {
        // Bot API method names are case-insensitive.
        self.api_method.eq_ignore_ascii_case("sendMessage")
    }
}

impl fmt::Display for TelegramRequest {
    // The token is left out: a test may use a real-looking one.
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self
            .status
            .map_or("no response".to_string(), |status| status.to_string());
        write!(
            formatter,
            "{} {} -> {status}",
            self.http_method, self.api_method
        )?;
        if let Some(description) = &self.description {
            write!(formatter, " ({description})")?;
        }
        if let Some(chat_id) = &self.chat_id {
            write!(formatter, " chat_id={chat_id}")?;
        }
        if let Some(parse_mode) = &self.parse_mode {
            write!(formatter, " parse_mode={parse_mode}")?;
        }
        if let Some(text) = &self.text {
            let excerpt: String = text.chars().take(TEXT_EXCERPT_CHARS).collect();
            let more = if excerpt.len() < text.len() {
                "…"
            } else {
                ""
            };
            write!(formatter, " text={excerpt:?}{more}")?;
        }
        Ok(())
    }
}

/// A running fake Bot API. Dropping it stops the server and panics if a
/// request handler panicked, so a broken fake fails the test.
pub struct FakeTelegram {
    base_url: String,
    address: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeTelegram {
    /// Starts a fake that accepts [`DEFAULT_TOKEN`].
    pub async fn start() -> FakeTelegram {
        FakeTelegram::start_with_token(DEFAULT_TOKEN).await
    }

    /// Starts a fake that accepts only `token` and returns 401 for any other.
    pub async fn start_with_token(token: &str) -> FakeTelegram {
        let listener = TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|error| panic!("fake Telegram could not bind 127.0.0.1:0: {error}"));
        listener.set_nonblocking(true).unwrap_or_else(|error| {
            panic!("fake Telegram could not make its socket non-blocking: {error}")
        });
        let address = listener
            .local_addr()
            .unwrap_or_else(|error| panic!("fake Telegram could not read its address: {error}"));

        let shared = Arc::new(Shared {
            token: token.to_string(),
            started_at: Instant::now(),
            state: Mutex::new(State {
                requests: Vec::new(),
                replies: VecDeque::new(),
                default_reply: Reply::Ok,
                validate: true,
                next_message_id: 1,
                handler_panic: None,
            }),
            changed: Notify::new(),
        });

        let (shutdown, shutdown_signal) = oneshot::channel();
        let server_shared = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("fake-telegram".to_string())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|error| {
                        panic!("fake Telegram could not build its runtime: {error}")
                    });
                runtime.block_on(server::serve(listener, server_shared, shutdown_signal));
                // Dropping the runtime cancels requests left hanging, which
                // closes their connections.
            })
            .unwrap_or_else(|error| panic!("fake Telegram could not start its thread: {error}"));

        FakeTelegram {
            base_url: format!("http://{address}"),
            address,
            shared,
            shutdown: Some(shutdown),
            thread: Some(thread),
        }
    }

    /// Base URL for the daemon's `TELEGRAM_API_BASE`, such as
    /// `http://127.0.0.1:40123`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Address the fake listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.token
    }

    /// Queues the reply to the next `sendMessage` request that has no
    /// queued reply yet. Queued replies are used in order, then the
    /// default applies.
    pub fn push_reply(&self, reply: Reply) {
        self.shared.lock().replies.push_back(reply);
    }

    /// Queues several replies, in order.
    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.lock().replies.extend(replies);
    }

    /// Sets the reply used when the queue is empty. It starts as
    /// [`Reply::Ok`].
    pub fn set_default_reply(&self, reply: Reply) {
        self.shared.lock().default_reply = reply;
    }

    /// Turns the MarkdownV2 and length checks of [`Reply::Ok`] on or off.
    /// They start on.
    pub fn set_validation(&self, enabled: bool) {
        self.shared.lock().validate = enabled;
    }

    /// Returns every request received so far, in order of arrival.
    pub fn requests(&self) -> Vec<TelegramRequest> {
        self.raise_handler_panic();
        self.shared.lock().requests.clone()
    }

    /// Returns the `sendMessage` requests received so far.
    pub fn messages(&self) -> Vec<TelegramRequest> {
        self.requests()
            .into_iter()
            .filter(TelegramRequest::is_message)
            .collect()
    }

    /// Waits until at least `count` requests have arrived, for at most
    /// [`patience`](super::patience), and returns all received so far.
    ///
    /// Panics with the requests received when time runs out.
    pub async fn wait_for_requests(&self, count: usize) -> Vec<TelegramRequest> {
        self.wait_for(count, "requests", |_| true).await
    }

    /// Waits until at least `count` `sendMessage` requests have arrived and
    /// returns all of them.
    pub async fn wait_for_messages(&self, count: usize) -> Vec<TelegramRequest> {
        self.wait_for(count, "sendMessage requests", TelegramRequest::is_message)
            .await
    }

    /// Lists every request received so far, one per line with the time since
    /// the fake started, for a test's failure message.
    pub fn describe_requests(&self) -> String {
        let state = self.shared.lock();
        if state.requests.is_empty() {
            return "(no requests)".to_string();
        }
        let lines: Vec<String> = state
            .requests
            .iter()
            .map(|request| {
                let elapsed = request.received_at.duration_since(self.shared.started_at);
                format!("+{} ms {request}", elapsed.as_millis())
            })
            .collect();
        lines.join("\n")
    }

    /// Stops the server and re-raises a panic from a request handler.
    pub fn shutdown(mut self) {
        self.stop();
        self.raise_handler_panic();
    }

    async fn wait_for(
        &self,
        count: usize,
        noun: &str,
        filter: impl Fn(&TelegramRequest) -> bool,
    ) -> Vec<TelegramRequest> {
        let deadline = Instant::now() + patience();
        loop {
            // Created before the check, so a request that arrives between the
            // check and the wait still wakes it.
            let changed = self.shared.changed.notified();

            let matching: Vec<TelegramRequest> = self
                .requests()
                .into_iter()
                .filter(|request| filter(request))
                .collect();
            if matching.len() >= count {
                return matching;
            }

            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                panic!(
                    "timed out after {:?} waiting for {count} {noun} to the fake Telegram API, \
                     received {}. Set {PATIENCE_VAR} to wait longer.\nrequests received:\n{}",
                    patience(),
                    matching.len(),
                    self.describe_requests()
                );
            }
            let _ = tokio::time::timeout(remaining, changed).await;
        }
    }

    fn raise_handler_panic(&self) {
        if let Some(message) = self.shared.lock().handler_panic.clone() {
            panic!("the fake Telegram server panicked while handling a request: {message}");
        }
    }

    fn stop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            if let Err(payload) = thread.join() {
                if !std::thread::panicking() {
                    std::panic::resume_unwind(payload);
                }
            }
        }
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.stop();
        if !std::thread::panicking() {
            self.raise_handler_panic();
        }
    }
}

impl fmt::Debug for FakeTelegram {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("FakeTelegram")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

/// State shared by the test and the server thread.
struct Shared {
    token: String,
    started_at: Instant,
    state: Mutex<State>,
    /// Woken whenever a request is recorded or a handler panics.
    changed: Notify,
}

struct State {
    requests: Vec<TelegramRequest>,
    replies: VecDeque<Reply>,
    default_reply: Reply,
    validate: bool,
    next_message_id: i64,
    handler_panic: Option<String>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held is reported on its own, so the data
        // is still worth reading.
        self.state
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    fn record_panic(&self, message: String) {
        let mut state = self.lock();
        state.handler_panic.get_or_insert(message);
        drop(state);
        self.changed.notify_waiters();
    }
}
