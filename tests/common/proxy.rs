//! A TCP proxy on loopback in front of a real server, to make the server look down
//! (connections cut, new ones refused), paused (connections open, nothing answered —
//! what a `SIGSTOP`ped server looks like to its clients), or leave the connections
//! made so far silently dead (half-open) while new ones work; and bring it back.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicU64, Ordering::SeqCst},
        Arc,
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{
        tcp::{OwnedReadHalf, OwnedWriteHalf},
        TcpListener, TcpStream,
    },
    sync::watch,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Open,
    Paused,
    Down,
}

pub struct Proxy {
    pub addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    /// Connections numbered up to this one are frozen.
    frozen_up_to: Arc<watch::Sender<u64>>,
    accepted: Arc<AtomicU64>,
}

impl Proxy {
    /// Starts forwarding a loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let mode = Arc::new(watch::channel(Mode::Open).0);
        let frozen_up_to = Arc::new(watch::channel(0u64).0);
        let accepted = Arc::new(AtomicU64::new(0));
        let (modes, frozen, count) = (mode.clone(), frozen_up_to.clone(), accepted.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if *modes.borrow() == Mode::Down {
                    continue; // dropped: the connection is refused
                }
                let number = count.fetch_add(1, SeqCst) + 1;
                let pump = Pump {
                    number,
                    mode: modes.subscribe(),
                    frozen: frozen.subscribe(),
                };
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(pump.clone().run(client_read, server_write));
                    pump.run(server_read, client_write).await;
                });
            }
        });
        Proxy {
            addr,
            mode,
            frozen_up_to,
            accepted,
        }
    }

    pub fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    /// Every connection made so far goes silent (stays open, forwards nothing); new
    /// connections work.
    pub fn freeze_existing(&self) {
        self.frozen_up_to.send_replace(self.accepted.load(SeqCst));
    }
}

/// Copies bytes one way while the proxy is open (and this connection not frozen),
/// holds them while paused or frozen, and cuts the connection when it goes down.
#[derive(Clone)]
struct Pump {
    number: u64,
    mode: watch::Receiver<Mode>,
    frozen: watch::Receiver<u64>,
}

impl Pump {
    async fn run(mut self, mut from: OwnedReadHalf, mut to: OwnedWriteHalf) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let n = tokio::select! {
                read = from.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                },
                _ = self.mode.wait_for(|m| *m == Mode::Down) => return,
            };
            if *self.frozen.borrow() >= self.number {
                std::future::pending::<()>().await; // silent forever
            }
            match self.mode.wait_for(|m| *m != Mode::Paused).await.map(|m| *m) {
                Ok(Mode::Open) => {}
                _ => return,
            }
            if to.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    }
}
