//! A small Stratum V2 Template Provider for SRI's `pool_sv2`, built from SRI's crates: it
//! accepts the Noise connection (as responder, with a key of its own), answers
//! `SetupConnection`, and sends the synthetic chain's `NewTemplate` and `SetNewPrevHash`
//! (`wgminer::pool::template`), a new tip every `every`. The Template Distribution exchange is
//! the SV2 specification's, section 7; pool_sv2's side is
//! `pool_sv2/src/lib/template_receiver/sv2_tp/mod.rs` (SetupConnection, then
//! CoinbaseOutputConstraints, then templates).

use std::net::SocketAddr;
use std::time::Duration;

use stratum_apps::network_helpers::noise_stream::NoiseTcpStream;
use stratum_apps::stratum_core::common_messages_sv2::SetupConnectionSuccessOwned;
use stratum_apps::stratum_core::noise_sv2::Responder;
use stratum_apps::stratum_core::parsers_sv2::{AnyMessageOwned, CommonMessagesOwned, TemplateDistributionOwned};
use tokio::net::TcpListener;
use tokio::sync::watch;
use wgminer::pool::template;
use wgminer::wire::Outbox;
use wgminer::wire::stratum_v2::key::AuthorityPair;
use wgminer::wire::stratum_v2::{self, Writer};

pub struct TemplateProvider {
    pub addr: SocketAddr,
    stop: watch::Sender<bool>,
}

impl Drop for TemplateProvider {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub async fn start(every: Duration) -> TemplateProvider {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stop_rx) = watch::channel(false);
    let keys = AuthorityPair::generate();
    tokio::spawn(async move {
        let mut stop_rx = stop_rx;
        loop {
            let (tcp, _) = tokio::select! {
                _ = stop_rx.changed() => return,
                conn = listener.accept() => match conn { Ok(c) => c, Err(_) => continue },
            };
            let responder = Responder::from_authority_kp(
                &keys.public.bytes(),
                &keys.secret.into_bytes(),
                Duration::from_secs(3600),
            )
            .unwrap();
            let stop = stop_rx.clone();
            tokio::spawn(async move {
                let Ok(stream) = NoiseTcpStream::accept(tcp, responder, Duration::from_secs(10)).await else { return };
                serve(stream, every, stop).await;
            });
        }
    });
    TemplateProvider { addr, stop }
}

async fn send_tip(write: &mut Writer, height: u32) -> Result<(), wgminer::source::stratum::core::TransportError> {
    let (new_template, prev) = template::at(height);
    write.put(AnyMessageOwned::TemplateDistribution(TemplateDistributionOwned::NewTemplate(new_template))).await?;
    write.put(AnyMessageOwned::TemplateDistribution(TemplateDistributionOwned::SetNewPrevHash(prev))).await
}

async fn serve(stream: NoiseTcpStream, every: Duration, mut stop: watch::Receiver<bool>) {
    let (read, write) = stream.into_split();
    let mut write = Writer::from(write);
    let mut messages = stratum_v2::spawn_reader(read);
    let mut height = 1;
    let mut set_up = false;
    let mut clock = tokio::time::interval(every);
    loop {
        let sent = tokio::select! {
            _ = stop.changed() => return,
            _ = clock.tick(), if set_up => {
                height += 1;
                send_tip(&mut write, height).await
            }
            message = messages.recv() => match message {
                Some(Ok(AnyMessageOwned::Common(CommonMessagesOwned::SetupConnection(_)))) => {
                    let ok = SetupConnectionSuccessOwned { used_version: 2, flags: 0 };
                    set_up = true;
                    match write.put(CommonMessagesOwned::SetupConnectionSuccess(ok).into()).await {
                        Ok(()) => send_tip(&mut write, height).await,
                        Err(e) => Err(e),
                    }
                }
                // CoinbaseOutputConstraints, SubmitSolution, RequestTransactionData: the
                // synthetic chain has nothing to add.
                Some(Ok(_)) => Ok(()),
                _ => return,
            },
        };
        if sent.is_err() {
            return;
        }
    }
}
