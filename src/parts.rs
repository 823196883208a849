//! The parts that own the gate's state, built once per isolate.

use std::rc::Rc;

use crate::app_password::{AppPasswordSettings, AppPasswords};
use crate::model::Config;
use crate::oidc::{Client, ClientSettings};
use crate::session::{SessionSettings, Sessions};

/// The parts that own the gate's state, shared by every handler: built once per isolate
/// and cloned (each is reference-counted) into each room that needs them.
#[derive(Clone)]
pub struct Parts {
    pub config: Rc<Config>,
    pub client: Rc<Client>,
    pub sessions: Rc<Sessions>,
    pub app_passwords: Rc<AppPasswords>,
}

impl Parts {
    pub fn new(config: Rc<Config>) -> Self {
        let client = Rc::new(Client::new(ClientSettings::of(&config)));
        Self {
            sessions: Rc::new(Sessions::new(SessionSettings::of(&config), client.clone())),
            app_passwords: Rc::new(AppPasswords::new(
                AppPasswordSettings::of(&config),
                client.clone(),
            )),
            client,
            config,
        }
    }
}
