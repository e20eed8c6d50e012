//! The README's hyper example: an HTTP/1 server on warden's pool, with the `hyper` feature
//! (which implies `io`), on `127.0.0.1:3000` (stop it with Ctrl-C).
//!
//! ```text
//! cargo run --release -p warden-io-bench --example hyper_server
//! curl http://127.0.0.1:3000/
//! ```

use std::convert::Infallible;
use std::net::TcpListener;

use async_io::Async;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, server::conn::http1, service::service_fn};
use warden::HyperIo;

async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    Ok(Response::new(Full::new(Bytes::from("Hello, world!\n"))))
}

fn main() -> std::io::Result<()> {
    // With warden's `hyper` feature (it implies `io`), idle workers wait in async-io's
    // reactor, and `HyperIo` gives hyper async-io's sockets.
    let ex = warden::Executor::new();
    ex.block_on(async {
        let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 3000))?;
        loop {
            let (stream, _) = listener.accept().await?;
            warden::spawn(async move {
                let conn =
                    http1::Builder::new().serve_connection(HyperIo::new(stream), service_fn(hello));
                if let Err(err) = conn.await {
                    eprintln!("connection error: {err}");
                }
            })
            .detach();
        }
    })
}
