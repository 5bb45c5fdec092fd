//! Open connections per client address, capped (`PALISADE_MAX_CONNECTIONS_PER_CLIENT`)
//! so one address cannot take every file descriptor. Trusted proxies carry many
//! clients' connections and are exempt.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use ipnet::IpNet;

#[derive(Clone)]
pub struct Clients {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    cap: usize,
    exempt: Arc<[IpNet]>,
}

/// One admitted connection; dropping it gives its place back.
pub struct Admitted {
    clients: Clients,
    peer: Option<IpAddr>,
}

impl Clients {
    pub fn new(cap: usize, exempt: &[IpNet]) -> Clients {
        Clients {
            open: Arc::default(),
            cap,
            exempt: exempt.into(),
        }
    }

    /// A place for a connection from `peer`, or `None` when it holds the cap already.
    pub fn admit(&self, peer: IpAddr) -> Option<Admitted> {
        let peer = canonical(peer);
        if self.exempt.iter().any(|n| n.contains(&peer)) {
            return Some(Admitted {
                clients: self.clone(),
                peer: None,
            });
        }
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let n = open.entry(peer).or_insert(0);
        if *n >= self.cap {
            return None;
        }
        *n += 1;
        Some(Admitted {
            clients: self.clone(),
            peer: Some(peer),
        })
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let Some(peer) = self.peer else { return };
        let mut open = self.clients.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = open.get_mut(&peer) {
            *n -= 1;
            if *n == 0 {
                open.remove(&peer);
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses count as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_own_cap_and_places_come_back() {
        let clients = Clients::new(2, &["10.0.0.0/8".parse().unwrap()]);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = clients.admit(a).expect("1st");
        let _second = clients.admit(a).expect("2nd");
        assert!(clients.admit(a).is_none(), "a third is refused");
        assert!(
            clients.admit("::ffff:192.0.2.1".parse().unwrap()).is_none(),
            "mapped"
        );
        assert!(clients.admit(b).is_some(), "another address still connects");
        drop(first);
        assert!(
            clients.admit(a).is_some(),
            "a closed connection frees a place"
        );
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let held: Vec<_> = (0..10)
            .map(|_| clients.admit(proxy).expect("exempt"))
            .collect();
        assert_eq!(held.len(), 10);
        assert!(clients.open.lock().unwrap().get(&proxy).is_none());
    }
}
