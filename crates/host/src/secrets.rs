//! `sluice:stage/secrets`: hand a stage the secrets it was granted. Values
//! come from the executor's [`SecretSource`](sluice_engine::executor::SecretSource)
//! (for `sluice run`, the runner's environment: a secret `NPM_TOKEN` is read
//! from the variable `NPM_TOKEN`) and are redacted from every log by the
//! stage's [`Redactor`](super::logpipe::Redactor).

use super::bindings::wit_secrets_v1::{ErrorCode, Host};
use super::state::{DeniedCall, StageState};

impl Host for StageState {
    async fn get(&mut self, name: String) -> Result<String, ErrorCode> {
        if !self.secret_grants.contains(&name) {
            let msg = format!(
                "secret `{name}` is not granted: grants.secrets is [{}]; add `{name}` to the stage's grants.secrets to allow it",
                self.secret_grants.join(", ")
            );
            self.denials
                .push(&self.log, DeniedCall::Secret(name.clone()), msg.clone());
            return Err(ErrorCode::Denied(msg));
        }
        match self.secrets.get(&name) {
            Some(value) => {
                self.log.note(&format!("secret `{name}` read"));
                Ok(value.clone())
            }
            None => Err(ErrorCode::NotFound(format!(
                "secret `{name}` is granted but the runner has no value for it: set the environment variable `{name}` where sluice runs"
            ))),
        }
    }
}
