//! Plays the server side of a [`corpus`](crate::corpus) case over a real
//! loopback socket, for the adapters' corpus runners.

use crate::certs::{CertVariant, server_config};
use crate::conn::{Conn, ConnError, FailureKind, escape};
use crate::corpus::{Case, Item, TIME_SCALE};
use crate::server::Handler;

/// A handler that sends the case's `S:` bytes, checks its `C:` bytes, does
/// the TLS handshake at `TLS` and closes at `CLOSE`; at the end it waits
/// for the client to close. With `bytewise`, every server write goes out one
/// byte per packet.
pub fn handler(case: &Case, bytewise: bool) -> Handler {
    let items: Vec<Item> = case
        .items
        .iter()
        .filter(|i| !matches!(i, Item::Action(_) | Item::Expect(_)))
        .cloned()
        .collect();
    Handler::custom(move |conn: &mut Conn| play(conn, &items, bytewise))
}

fn play(conn: &mut Conn, items: &[Item], bytewise: bool) -> Result<(), ConnError> {
    for (step, item) in items.iter().enumerate() {
        // Past the last item the client must answer, the client may leave
        // as soon as it has what it needs (for instance a client that takes
        // an injected STARTTLS 220 at face value, starts TLS, fails and
        // closes); the outcome check judges it, not this server.
        // After a wait the client may have given up (a timeout case).
        let client_may_leave = !items[step..]
            .iter()
            .any(|i| matches!(i, Item::Client(_) | Item::Tls))
            || items[..step].iter().any(|i| matches!(i, Item::Wait(_)));
        match item {
            Item::Server(bytes) => {
                let chunks: Vec<&[u8]> = if bytewise {
                    bytes.chunks(1).collect()
                } else {
                    vec![bytes.as_slice()]
                };
                for chunk in chunks {
                    match conn.send(chunk) {
                        Ok(()) => {}
                        Err(_) if client_may_leave => return Ok(()),
                        Err(e) => return Err(e),
                    }
                }
            }
            Item::Client(expected) => {
                let got = match conn.read_exact_bytes(expected.len()) {
                    Ok(got) => got,
                    Err(_) if client_may_leave => return Ok(()),
                    Err(e) => return Err(e),
                };
                if &got != expected {
                    conn.fail(
                        Some(step),
                        FailureKind::Mismatch,
                        format!(
                            "client sent {}, expected {}",
                            escape(&got),
                            escape(expected)
                        ),
                    );
                    conn.close();
                    return Ok(());
                }
            }
            Item::Tls => match conn.start_tls(server_config(CertVariant::Valid)) {
                Ok(_) => {}
                Err(_) if client_may_leave => return Ok(()),
                Err(e) => return Err(e),
            },
            Item::Wait(d) => std::thread::sleep(*d / TIME_SCALE),
            Item::Close => {
                conn.close();
                return Ok(());
            }
            Item::Action(_) | Item::Expect(_) => {}
        }
    }
    // Stay silent until the client goes away: a case that ends while the
    // client still waits for a reply is a timeout case. A TLS handshake
    // record (0x16) here is a client that started TLS after an injected 220
    // arrived split from what followed it: expected, judged by the outcome.
    if let Err(e) = conn.expect_close()
        && conn.buffered().first() != Some(&0x16)
    {
        conn.fail_with(None, "at the end of the script", &e);
    }
    Ok(())
}
