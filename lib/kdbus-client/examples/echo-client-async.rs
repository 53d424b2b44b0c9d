//! The echo client on tokio: concurrent calls on one connection, then a
//! signal, awaited through the connection's descriptor.
//!
//! ```sh
//! echo-client-async [ENDPOINT]   # default: the system bus; needs --features tokio
//! ```

use kdbus_client::{Address, AsyncConnection, ConnectionBuilder};

const NAME: &str = "org.example.Echo";
const PATH: &str = "/org/example/Echo";
const IFACE: &str = "org.example.Echo";

#[tokio::main(flavor = "current_thread")]
async fn main() -> kdbus_client::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .map(Address::path)
        .unwrap_or_else(Address::system);
    let conn = AsyncConnection::new(
        ConnectionBuilder::address(addr)
            .description("echo-async")
            .build()?,
    )?;
    conn.add_match(&format!(
        "type='signal',interface='{IFACE}',member='Echoed'"
    ))?;
    let calls = (0..8).map(|i| {
        let conn = conn.clone();
        tokio::spawn(async move {
            let s = format!("async #{i}");
            let r: String = conn
                .call_method(NAME, PATH, Some(IFACE), "Echo", &(s.as_str(),))
                .await?
                .body()?;
            assert_eq!(r, s);
            kdbus_client::Result::Ok(r)
        })
    });
    for c in calls {
        let r = c.await.expect("task")?;
        println!("echo-client-async: {r}");
    }
    let mut n = 0;
    while n < 8 {
        let m = conn.receive().await?;
        if m.is_signal(IFACE, "Echoed") {
            n += 1;
        }
    }
    println!("echo-client-async: 8 replies and 8 signals: OK");
    Ok(())
}
