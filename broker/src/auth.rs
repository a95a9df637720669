//! Who may connect: Mosquitto 2's anonymous rule (allowed on loopback
//! listeners, refused on others unless configured) and, when configured,
//! the password file (see [`crate::passwd`]).

use crate::codec::connack_reason;
use crate::passwd::PasswordFile;

#[derive(Debug, Default)]
pub struct Authenticator {
    /// `None`: follow the listener's default (loopback only).
    pub allow_anonymous: Option<bool>,
    pub passwords: Option<PasswordFile>,
}

impl Authenticator {
    /// `Err` carries the CONNACK reason code.
    pub fn check(
        &self,
        username: Option<&str>,
        password: Option<&[u8]>,
        listener_anonymous: bool,
    ) -> Result<(), u8> {
        let Some(user) = username else {
            return if self.allow_anonymous.unwrap_or(listener_anonymous) {
                Ok(())
            } else {
                Err(connack_reason::NOT_AUTHORIZED)
            };
        };
        match &self.passwords {
            None => Ok(()),
            Some(file) if file.verify(user, password.unwrap_or_default()) => Ok(()),
            Some(_) => Err(connack_reason::BAD_USER_OR_PASSWORD),
        }
    }
}
