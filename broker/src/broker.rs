//! The [`Broker`]: loads the ACL and password files, binds the listeners,
//! starts the router, hands out local clients and shuts down gracefully.
//!
//! The broker runs on its own runtime on its own thread(s)
//! (`BrokerConfig::worker_threads`, default 1): with one thread, requests
//! from different clients reach the router in the order their bytes
//! arrived, as in Mosquitto's single event loop (a SUBSCRIBE read before
//! another client's PUBLISH is applied first), and the broker's latency
//! does not depend on what the embedding process's runtime is doing.

use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::acl::{Acl, AclError};
use crate::auth::Authenticator;
use crate::config::BrokerConfig;
use crate::connection::ConnContext;
use crate::listener::{self, TlsError, Transport};
use crate::local_client::{self, LocalClient, LocalError, LocalOptions, LocalReceiver};
use crate::passwd::{PasswdError, PasswordFile};
use crate::persistence::{Journal, PersistError};
use crate::router::{Router, ROUTER_CHANNEL_CAPACITY};
use crate::stats::Stats;

/// The crate version, reported in `$SYS/broker/version`.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Acl(#[from] AclError),
    #[error(transparent)]
    Persist(#[from] PersistError),
    #[error("cannot start the broker's runtime: {0}")]
    Runtime(std::io::Error),
    #[error("TLS listener: {0}")]
    Tls(#[from] TlsError),
    #[error(transparent)]
    Passwd(#[from] PasswdError),
}

/// The broker's tasks, on the broker's own runtime.
struct Running {
    ctx: Arc<ConnContext>,
    mqtt_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    router_stop: CancellationToken,
    router_task: JoinHandle<()>,
    listeners: Vec<JoinHandle<()>>,
}

impl Running {
    async fn start(config: BrokerConfig) -> Result<Running, BrokerError> {
        let acl = config.acl_file.as_deref().map(Acl::load).transpose()?;
        let passwords = config
            .password_file
            .as_deref()
            .map(PasswordFile::load)
            .transpose()?;
        let auth = Authenticator {
            allow_anonymous: config.allow_anonymous,
            passwords,
        };
        let config = Arc::new(config);
        let stats = Arc::new(Stats::default());
        let (router_tx, router_rx) = mpsc::channel(ROUTER_CHANNEL_CAPACITY);
        let router_stop = CancellationToken::new();
        let mut router = Router::new(config.clone(), stats.clone(), acl);
        if let Some(dir) = &config.persistence_dir {
            let (journal, restored) = Journal::open(dir)?;
            info!(
                "Restored {} retained messages and {} sessions from {}.",
                restored.retained.len(),
                restored.sessions.len(),
                dir.display()
            );
            router = router.with_journal(journal, restored);
        }
        let router_task = tokio::spawn(router.run(router_rx, router_stop.clone()));
        let ctx = Arc::new(ConnContext {
            router: router_tx,
            config: config.clone(),
            auth: Arc::new(auth),
            stats,
            next_conn_id: AtomicU64::new(1),
            shutdown: CancellationToken::new(),
        });
        let limit = Arc::new(Semaphore::new(config.limits.max_connections));
        let mut listeners = Vec::new();
        let mut spawn = |tcp: TcpListener, transport: Transport| {
            let task = listener::run(tcp, transport, ctx.clone(), limit.clone());
            listeners.push(tokio::spawn(task));
        };
        let mut mqtt_addr = None;
        if let Some(addr) = config.mqtt {
            let (tcp, bound) = bind(addr).await?;
            mqtt_addr = Some(bound);
            spawn(tcp, Transport::Tcp);
        }
        let mut ws_addr = None;
        if let Some(addr) = config.ws {
            let (tcp, bound) = bind(addr).await?;
            ws_addr = Some(bound);
            spawn(tcp, Transport::WebSocket);
        }
        let mut tls_addr = None;
        if let Some(tls) = &config.tls {
            let acceptor = listener::tls_acceptor(&tls.cert_file, &tls.key_file)?;
            let (tcp, bound) = bind(tls.addr).await?;
            tls_addr = Some(bound);
            spawn(tcp, Transport::Tls(acceptor));
        }
        if let Some(interval) = config.sys_interval.filter(|d| !d.is_zero()) {
            let sys = crate::sys::run(
                ctx.router.clone(),
                ctx.stats.clone(),
                interval,
                VERSION,
                ctx.shutdown.clone(),
            );
            listeners.push(tokio::spawn(sys));
        }
        info!("flowd broker {VERSION} running.");
        Ok(Running {
            ctx,
            mqtt_addr,
            ws_addr,
            tls_addr,
            router_stop,
            router_task,
            listeners,
        })
    }

    async fn shutdown(self) {
        info!("flowd broker {VERSION} terminating.");
        self.ctx.shutdown.cancel();
        for l in self.listeners {
            let _ = l.await;
        }
        self.router_stop.cancel();
        let _ = self.router_task.await;
    }
}

/// Binds a listening socket, logging like Mosquitto.
async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), BrokerError> {
    let tcp = TcpListener::bind(addr)
        .await
        .map_err(|source| BrokerError::Bind { addr, source })?;
    let bound = tcp
        .local_addr()
        .map_err(|source| BrokerError::Bind { addr, source })?;
    info!(
        "Opening ipv{} listen socket on port {}.",
        if bound.is_ipv4() { 4 } else { 6 },
        bound.port()
    );
    Ok((tcp, bound))
}

/// Opens in-process connections to a running broker (cheap to clone). Once
/// the broker has stopped, a new connection reads end-of-file at once.
#[derive(Clone)]
pub struct InProcessConnector {
    ctx: Arc<ConnContext>,
    runtime: tokio::runtime::Handle,
}

impl InProcessConnector {
    /// Opens a connection that the broker serves exactly as it serves a TCP
    /// client of a loopback listener (same handshake, sessions, QoS flows,
    /// ACL and limits): the returned stream carries MQTT packets both ways,
    /// starting with the client's CONNECT. No socket and no system call.
    pub fn connect(&self) -> tokio::io::DuplexStream {
        let (client, server) = tokio::io::duplex(IN_PROCESS_BUFFER);
        let ctx = self.ctx.clone();
        self.runtime.spawn(crate::connection::serve(
            server,
            crate::connection::Peer::InProcess,
            0,
            true,
            ctx,
        ));
        client
    }
}

/// Bytes buffered each way in an in-process connection ([`Broker::connect_stream`]).
const IN_PROCESS_BUFFER: usize = 256 * 1024;

/// How the broker thread should stop.
enum Stop {
    Graceful,
    /// Drop every task at once, as a killed process would (tests).
    Kill,
}

/// What the broker thread reports once it is serving.
struct Ready {
    ctx: Arc<ConnContext>,
    runtime: tokio::runtime::Handle,
    mqtt_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
}

/// A running broker. Dropping it shuts it down gracefully in the
/// background; [`Broker::shutdown`] waits for that.
pub struct Broker {
    ctx: Arc<ConnContext>,
    /// The broker thread's runtime, where in-process connections are served.
    runtime: tokio::runtime::Handle,
    mqtt_addr: Option<SocketAddr>,
    ws_addr: Option<SocketAddr>,
    tls_addr: Option<SocketAddr>,
    stop: Option<oneshot::Sender<Stop>>,
    done: Option<oneshot::Receiver<()>>,
}

fn runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("flowd-broker")
            .enable_all()
            .build()
    }
}

impl Broker {
    /// Loads the configured files, binds every listener and starts serving
    /// on the broker's own thread(s). Returns once the listeners are bound.
    pub async fn start(config: BrokerConfig) -> Result<Broker, BrokerError> {
        let (ready_tx, ready_rx) = oneshot::channel::<Result<Ready, BrokerError>>();
        let (stop_tx, stop_rx) = oneshot::channel::<Stop>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let threads = config.worker_threads;
        let thread = std::thread::Builder::new()
            .name("flowd-broker".into())
            .spawn(move || {
                let rt = match runtime(threads) {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(BrokerError::Runtime(e)));
                        return;
                    }
                };
                rt.block_on(async move {
                    let running = match Running::start(config).await {
                        Ok(r) => r,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let ready = Ready {
                        ctx: running.ctx.clone(),
                        runtime: tokio::runtime::Handle::current(),
                        mqtt_addr: running.mqtt_addr,
                        ws_addr: running.ws_addr,
                        tls_addr: running.tls_addr,
                    };
                    let _ = ready_tx.send(Ok(ready));
                    match stop_rx.await {
                        Ok(Stop::Kill) => {}
                        Ok(Stop::Graceful) | Err(_) => running.shutdown().await,
                    }
                });
                // Dropping the runtime drops whatever tasks are left.
                drop(rt);
                let _ = done_tx.send(());
            });
        if let Err(e) = thread {
            return Err(BrokerError::Runtime(e));
        }
        let ready = match ready_rx.await {
            Ok(r) => r?,
            Err(_) => {
                return Err(BrokerError::Runtime(std::io::Error::other(
                    "broker thread ended",
                )))
            }
        };
        Ok(Broker {
            ctx: ready.ctx,
            runtime: ready.runtime,
            mqtt_addr: ready.mqtt_addr,
            ws_addr: ready.ws_addr,
            tls_addr: ready.tls_addr,
            stop: Some(stop_tx),
            done: Some(done_rx),
        })
    }

    /// The bound MQTT/TCP address (useful with port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.mqtt_addr
    }

    /// The bound MQTT-over-WebSocket address.
    pub fn ws_addr(&self) -> Option<SocketAddr> {
        self.ws_addr
    }

    /// The bound MQTT-over-TLS address.
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// Connects an in-process client. See [`crate::local_client`].
    pub async fn connect_local(
        &self,
        opts: LocalOptions,
    ) -> Result<(LocalClient, LocalReceiver), LocalError> {
        local_client::connect(&self.ctx, opts).await
    }

    /// Opens an in-process connection; see [`InProcessConnector::connect`].
    pub fn connect_stream(&self) -> tokio::io::DuplexStream {
        self.in_process().connect()
    }

    /// A handle that opens in-process connections to this broker.
    pub fn in_process(&self) -> InProcessConnector {
        InProcessConnector {
            ctx: self.ctx.clone(),
            runtime: self.runtime.clone(),
        }
    }

    /// Stops accepting, disconnects every client (v5: reason 0x8B),
    /// flushes and compacts the persistence journal, and waits for all of
    /// it to finish.
    pub async fn shutdown(mut self) {
        self.stop_with(Stop::Graceful).await;
    }

    /// Stops the broker abruptly, like a killed process: no goodbyes to
    /// clients, no journal compaction; only what was already on disk
    /// survives. For crash-safety tests.
    #[doc(hidden)]
    pub async fn kill(mut self) {
        self.stop_with(Stop::Kill).await;
    }

    async fn stop_with(&mut self, how: Stop) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(how);
        }
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}
