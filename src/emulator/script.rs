//! Runs an application's conditional-auth script against a model of the adaptive-authentication API,
//! with an embedded JavaScript engine (QuickJS through the `rquickjs` crate).
//!
//! The model is what the operator's generated scripts use (asgardeo-api.md, "Conditional
//! authentication"): the script defines `onLoginRequest(context)`; `executeStep(n, {onSuccess,
//! onFail})` (or `executeStep(n, options, {onSuccess, onFail})`) runs step n with the option the
//! simulated user picked, then calls back; `context.steps[n].idp` is the name of the IdP that
//! authenticated step n (`LOCAL` for local authenticators), `.authenticator` its authenticator;
//! `context.currentKnownSubject` is the user identified by the first step that ran. Without a script
//! the server runs every step in order, and so does the model.
//!
//! Accounts follow the product's rule: after a sign-in through an IdP whose JIT provisioning is off,
//! the user has no local account, so a later step whose authenticator keeps its secret on the local
//! account fails. A failed step ends the login (its `onFail` is still called).
//!
//! The user's choices and the accounts model go into the engine as a JSON literal; the script runs
//! in a fresh runtime per login, with a memory limit and a deadline (a loop cannot hang the emulator).
//!
//! Where the script comes from: `authenticationSequence.script` of the application (the
//! `AuthenticationSequence` schema of the Application Management API, applications.yaml), stored by
//! `app::apply_sequence`. Writing it needs the scope `internal_application_script_update`, 403
//! otherwise, as in wso2/identity-api-server `ServerApplicationManagementService`: `createApplication`
//! checks a non-null script and `patchApplication` checks `isScriptUpdating(...)`, both through
//! `validateAuthenticationScriptUpdatePermission()` (added in daa68cd560, Oct 2025).

use std::time::{Duration, Instant};

use rquickjs::{CatchResultExt, Context, Runtime};
use serde::{Deserialize, Serialize};

/// One option of a step as the simulated user sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Choice {
    /// `LOCAL` or the IdP's name.
    pub idp: String,
    /// The authenticator's name.
    pub authenticator: String,
    /// A sign-in through a federated identity provider (not a local or connector-style factor).
    pub federated: bool,
    /// The authenticator keeps its secret on the local account.
    pub needs_local: bool,
    /// JIT provisioning creates a local account for this IdP's users (federated options only).
    pub jit_on: bool,
}

/// A step that ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ran {
    /// Step number (1-based).
    pub step: u32,
    /// `LOCAL` or the IdP's name.
    pub idp: String,
    /// The authenticator.
    pub authenticator: String,
    /// Whether the step succeeded.
    pub success: bool,
}

/// The outcome of one simulated login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// The login succeeded: at least one step ran and none failed.
    pub success: bool,
    /// The steps that ran, in order.
    pub steps: Vec<Ran>,
    /// Why the login failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
    /// A step failed because the user had no local account (the conflict the operator reports).
    #[serde(default)]
    pub failed_for_want_of_local_account: bool,
}

/// How long one script may run.
const DEADLINE: Duration = Duration::from_millis(500);
/// Memory one script may use.
const MEMORY_LIMIT: usize = 16 << 20;

/// The adaptive API model; `__input.choices` maps a step number to the chosen [`Choice`].
const PRELUDE: &str = r#"
var __out = { ran: [], failure: null, noAccountStep: false };
var __noAccountBy = null;
var context = { steps: {}, currentKnownSubject: null };
var executeStep = function (n) {
    var callbacks = arguments.length > 2 ? arguments[2] : arguments[1];
    if (__out.failure !== null) {
        return;
    }
    if (typeof n !== 'number' || n % 1 !== 0) {
        throw new Error('executeStep: the step must be an integer, got ' + n);
    }
    var c = __input.choices[String(n)];
    if (c === undefined) {
        throw new Error('executeStep(' + n + '): the flow has no step ' + n);
    }
    var ok = !(c.needsLocal && __noAccountBy !== null);
    __out.ran.push({ step: n, idp: c.idp, authenticator: c.authenticator, success: ok });
    if (!ok) {
        __out.failure = 'step ' + n + ' (' + c.authenticator + ') needs a local account, but the user signed in through '
            + __noAccountBy + ', whose JIT provisioning is off, and has none';
        __out.noAccountStep = true;
        if (callbacks && typeof callbacks.onFail === 'function') {
            callbacks.onFail(context);
        }
        return;
    }
    if (c.federated && !c.jitOn && __noAccountBy === null) {
        __noAccountBy = c.idp;
    }
    var subject = { username: c.federated ? c.idp + '-user' : 'local-user', isFederated: c.federated };
    context.steps[n] = { idp: c.idp, authenticator: c.authenticator, subject: subject };
    if (context.currentKnownSubject === null) {
        context.currentKnownSubject = subject;
    }
    if (callbacks && typeof callbacks.onSuccess === 'function') {
        callbacks.onSuccess(context);
    }
};
"#;

/// Errors that stop a simulation before it can say anything about the login.
#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    /// The engine could not start.
    #[error("JavaScript engine: {0}")]
    Engine(String),
}

/// Runs one login: `choices[i]` is the option picked at step `i + 1`. `script` is the application's
/// conditional-auth script (`None`: every step in order). A script that throws, or defines no
/// `onLoginRequest`, fails the login with the error as the reason, as on the server.
pub fn run_login(script: Option<&str>, choices: &[Choice]) -> Result<Outcome, ScriptError> {
    let engine = |e: rquickjs::Error| ScriptError::Engine(e.to_string());
    let by_step: serde_json::Map<String, serde_json::Value> = choices
        .iter()
        .enumerate()
        .filter_map(|(i, c)| Some(((i + 1).to_string(), serde_json::to_value(c).ok()?)))
        .collect();
    let input = serde_json::json!({ "choices": by_step });
    let sequential;
    let body: &str = match script.filter(|s| !s.trim().is_empty()) {
        Some(s) => s,
        None => {
            let calls: Vec<String> = (1..=choices.len())
                .map(|n| format!("executeStep({n});"))
                .collect();
            sequential = format!(
                "var onLoginRequest = function (context) {{\n{}\n}};",
                calls.join("\n")
            );
            &sequential
        }
    };
    let source = format!(
        "var __input = {input};\n{PRELUDE}\n{body}\n;\n\
         if (typeof onLoginRequest !== 'function') {{ throw new Error('the script defines no onLoginRequest function'); }}\n\
         onLoginRequest(context);\nJSON.stringify(__out);"
    );
    let rt = Runtime::new().map_err(engine)?;
    rt.set_memory_limit(MEMORY_LIMIT);
    rt.set_max_stack_size(512 * 1024);
    let deadline = Instant::now() + DEADLINE;
    rt.set_interrupt_handler(Some(Box::new(move || Instant::now() > deadline)));
    let ctx = Context::full(&rt).map_err(engine)?;
    let result: Result<String, String> = ctx.with(|ctx| {
        ctx.eval::<String, _>(source)
            .catch(&ctx)
            .map_err(|e| e.to_string())
    });
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Raw {
        ran: Vec<Ran>,
        failure: Option<String>,
        no_account_step: bool,
    }
    Ok(match result {
        Ok(json) => match serde_json::from_str::<Raw>(&json) {
            Ok(raw) => Outcome {
                success: raw.failure.is_none() && !raw.ran.is_empty(),
                failure: raw.failure.or_else(|| {
                    raw.ran
                        .is_empty()
                        .then(|| "the script executed no step".to_owned())
                }),
                steps: raw.ran,
                failed_for_want_of_local_account: raw.no_account_step,
            },
            Err(e) => Outcome {
                success: false,
                steps: vec![],
                failure: Some(format!("the script's result could not be read: {e}")),
                failed_for_want_of_local_account: false,
            },
        },
        Err(e) => Outcome {
            success: false,
            steps: vec![],
            failure: Some(format!("script error: {e}")),
            failed_for_want_of_local_account: false,
        },
    })
}

/// Most logins a proof enumerates (each is a fresh engine: this bounds the time a reconcile spends
/// proving); a flow with more ways through it is not proved.
pub const MAX_PROOF_LOGINS: usize = 64;

/// Whether `script` provably never lets a login fail for want of a local account in this flow, even
/// with JIT provisioning off on every IdP: every way through the flow (one option per step) is run,
/// and each must end without a script error (a script that touches anything outside the modelled
/// API throws here) and without a local-account failure. `steps` holds (IdP or `LOCAL`,
/// authenticator) per option; `needs_local` says which authenticators keep their secret on the
/// local account. A flow with more than [`MAX_PROOF_LOGINS`] ways through it is not proved.
pub fn proves_no_local_account_failure(
    script: &str,
    steps: &[Vec<(String, String)>],
    needs_local: &crate::flow::LocalAccountAuthenticators,
) -> bool {
    let total = steps
        .iter()
        .try_fold(1usize, |n, s| n.checked_mul(s.len()))
        .unwrap_or(usize::MAX);
    if steps.is_empty() || total == 0 || total > MAX_PROOF_LOGINS {
        return false;
    }
    let options: Vec<Vec<Choice>> = steps
        .iter()
        .map(|s| {
            s.iter()
                .map(|(idp, authenticator)| {
                    let needs = needs_local.contains(authenticator);
                    Choice {
                        idp: idp.clone(),
                        authenticator: authenticator.clone(),
                        federated: idp != crate::backend::wire::LOCAL_IDP && !needs,
                        needs_local: needs,
                        jit_on: false,
                    }
                })
                .collect()
        })
        .collect();
    (0..total).all(|mut k| {
        let login: Vec<Choice> = options
            .iter()
            .map(|opts| {
                let c = opts[k % opts.len()].clone();
                k /= opts.len();
                c
            })
            .collect();
        // Only a success counts: a failure here is a local-account failure or a script error.
        run_login(Some(script), &login).is_ok_and(|o| o.success)
    })
}

#[cfg(test)]
mod tests;
