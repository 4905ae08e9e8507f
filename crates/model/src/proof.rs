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
//! Accounts follow the product's rule: after a sign-in through an IdP whose JIT provisioning does not
//! provision the user (off, or skipped because the account lookup matched nobody; see
//! [`Choice::jit_on`]), the user has no local account, so a later step whose authenticator keeps its secret on the local
//! account fails. A failed step ends the login (its `onFail` is still called).
//!
//! The user's choices, the accounts model and the record of the steps that ran stay in Rust: the
//! script reaches them only through `executeStep`, a global it cannot replace, defined by a prelude
//! that runs before it (issue 24: a script redefining the simulation's functions faked a proof).
//! Each login runs in a fresh runtime, with a memory limit and a deadline (a loop cannot hang the
//! emulator or a reconcile).
//!
//! Where the script comes from: `authenticationSequence.script` of the application (the
//! `AuthenticationSequence` schema of the Application Management API, applications.yaml), stored by
//! `app::apply_sequence`. Writing it needs the scope `internal_application_script_update`, 403
//! otherwise, as in wso2/identity-api-server `ServerApplicationManagementService`: `createApplication`
//! checks a non-null script and `patchApplication` checks `isScriptUpdating(...)`, both through
//! `validateAuthenticationScriptUpdatePermission()` (added in daa68cd560, Oct 2025).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rquickjs::{CatchResultExt, Context, Ctx, Exception, Function, Object, Runtime};
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
    /// JIT provisioning creates a local account for this IdP's user (federated options only): on,
    /// and not skipped for a failed account lookup. The simulated user is a first sign-in, whom
    /// no local account matches.
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

/// The adaptive API model: a function of the native step recorder that defines `executeStep` (as a
/// global the script cannot replace) and returns the function that runs the script's
/// `onLoginRequest`. It runs before the script, so what it captures (the recorder, `context`) are
/// closure variables no script can reach; the accounts model and the record of what ran live in Rust
/// ([`Sim`]), so a script can only take the ways through the flow the API offers, never write the
/// verdict.
const PRELUDE: &str = r#"
(function (step) {
    'use strict';
    var context = { steps: {}, currentKnownSubject: null };
    var executeStep = function (n) {
        var callbacks = arguments.length > 2 ? arguments[2] : arguments[1];
        var r = step(n);
        if (r === null) {
            return;
        }
        if (!r.ok) {
            if (callbacks && typeof callbacks.onFail === 'function') {
                callbacks.onFail(context);
            }
            return;
        }
        var subject = { username: r.federated ? r.idp + '-user' : 'local-user', isFederated: r.federated };
        context.steps[n] = { idp: r.idp, authenticator: r.authenticator, subject: subject };
        if (context.currentKnownSubject === null) {
            context.currentKnownSubject = subject;
        }
        if (callbacks && typeof callbacks.onSuccess === 'function') {
            callbacks.onSuccess(context);
        }
    };
    Object.defineProperty(globalThis, 'executeStep', {
        value: executeStep, writable: false, enumerable: true, configurable: false
    });
    return function () {
        if (typeof onLoginRequest !== 'function') {
            throw new Error('the script defines no onLoginRequest function');
        }
        onLoginRequest(context);
    };
})
"#;

/// The simulation's state, outside the engine: the user's choices, the accounts model and what ran.
#[derive(Default)]
struct Sim {
    /// `choices[i]` is the option picked at step `i + 1`.
    choices: Vec<Choice>,
    /// `onLoginRequest` has been called: steps run only from there, as on the server (a script's
    /// top-level code runs when it is loaded, not per login).
    started: bool,
    /// The steps that ran.
    ran: Vec<Ran>,
    /// Why the login failed.
    failure: Option<String>,
    /// The IdP without JIT the user signed in through (they have no local account from then on).
    no_account_by: Option<String>,
    /// A step failed for want of a local account.
    no_account_step: bool,
}

impl Sim {
    /// `executeStep(n)`: records step `n` and gives its option and whether it succeeded (`None` once
    /// the login failed: later steps do not run), or the error the script gets.
    fn step(&mut self, n: f64) -> Result<Option<(Choice, bool)>, String> {
        if !self.started {
            return Err(
                "executeStep may only be called from onLoginRequest and its callbacks".to_owned(),
            );
        }
        if self.failure.is_some() {
            return Ok(None);
        }
        let Some(c) = (n.fract() == 0.0 && n >= 1.0)
            .then(|| self.choices.get(n as usize - 1))
            .flatten()
            .cloned()
        else {
            return Err(format!("executeStep({n}): the flow has no step {n}"));
        };
        let ok = !(c.needs_local && self.no_account_by.is_some());
        self.ran.push(Ran {
            step: n as u32,
            idp: c.idp.clone(),
            authenticator: c.authenticator.clone(),
            success: ok,
        });
        if !ok {
            self.failure = Some(format!(
                "step {n} ({}) needs a local account, but the user signed in through {}, whose JIT \
                 provisioning is off (or skipped on lookup failure), and has none",
                c.authenticator,
                self.no_account_by.as_deref().unwrap_or_default()
            ));
            self.no_account_step = true;
        } else if c.federated && !c.jit_on && self.no_account_by.is_none() {
            self.no_account_by = Some(c.idp.clone());
        }
        Ok(Some((c, ok)))
    }
}

/// The native `step(n)` the prelude's `executeStep` calls: [`Sim::step`] as a JavaScript function
/// returning `{ok, idp, authenticator, federated}`, `null` once the login failed, or throwing.
fn recorder<'js>(ctx: &Ctx<'js>, sim: Rc<RefCell<Sim>>) -> rquickjs::Result<Function<'js>> {
    Function::new(
        ctx.clone(),
        move |ctx: Ctx<'js>, n: f64| -> rquickjs::Result<Option<Object<'js>>> {
            let done = sim.borrow_mut().step(n);
            match done {
                Err(message) => Err(Exception::throw_message(&ctx, &message)),
                Ok(None) => Ok(None),
                Ok(Some((c, ok))) => {
                    let r = Object::new(ctx.clone())?;
                    r.set("ok", ok)?;
                    r.set("idp", c.idp)?;
                    r.set("authenticator", c.authenticator)?;
                    r.set("federated", c.federated)?;
                    Ok(Some(r))
                }
            }
        },
    )
}

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
///
/// Each login gets a fresh runtime: the prelude runs first and keeps its state out of the script's
/// reach, then the script is evaluated, then its `onLoginRequest` is called.
pub fn run_login(script: Option<&str>, choices: &[Choice]) -> Result<Outcome, ScriptError> {
    let engine = |e: rquickjs::Error| ScriptError::Engine(e.to_string());
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
    let sim = Rc::new(RefCell::new(Sim {
        choices: choices.to_vec(),
        ..Sim::default()
    }));
    let rt = Runtime::new().map_err(engine)?;
    rt.set_memory_limit(MEMORY_LIMIT);
    rt.set_max_stack_size(512 * 1024);
    let deadline = Instant::now() + DEADLINE;
    rt.set_interrupt_handler(Some(Box::new(move || Instant::now() > deadline)));
    let ctx = Context::full(&rt).map_err(engine)?;
    let result: Result<(), String> = ctx.with(|ctx| {
        let step = recorder(&ctx, sim.clone())
            .catch(&ctx)
            .map_err(|e| e.to_string())?;
        let prelude: Function = ctx.eval(PRELUDE).catch(&ctx).map_err(|e| e.to_string())?;
        let run: Function = prelude
            .call((step,))
            .catch(&ctx)
            .map_err(|e| e.to_string())?;
        ctx.eval::<(), _>(body)
            .catch(&ctx)
            .map_err(|e| e.to_string())?;
        sim.borrow_mut().started = true;
        run.call::<_, ()>(()).catch(&ctx).map_err(|e| e.to_string())
    });
    let sim = sim.take();
    Ok(match result {
        Ok(()) => Outcome {
            success: sim.failure.is_none() && !sim.ran.is_empty(),
            failure: sim.failure.or_else(|| {
                sim.ran
                    .is_empty()
                    .then(|| "the script executed no step".to_owned())
            }),
            steps: sim.ran,
            failed_for_want_of_local_account: sim.no_account_step,
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
    needs_local: &crate::LocalAccountAuthenticators,
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
                        federated: idp != crate::LOCAL_IDP && !needs,
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

/// One question a proof answers: does `script` keep every login of a flow with these options
/// (IdP or `LOCAL`, authenticator) from a local-account failure, given which authenticators keep
/// their secret on the local account. The answer never changes for a question, so it is asked once.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Question {
    /// The application's conditional-auth script.
    pub script: String,
    /// Per step, its options: (IdP or `LOCAL`, authenticator).
    pub steps: Vec<Vec<(String, String)>>,
    /// The authenticators that keep their secret on the local account, sorted.
    pub needs_local: Vec<String>,
}

impl Question {
    /// The question for `script` over `steps`, with `needs_local` as the rule sees it.
    pub fn new(
        script: &str,
        steps: Vec<Vec<(String, String)>>,
        needs_local: &crate::LocalAccountAuthenticators,
    ) -> Self {
        Question {
            script: script.to_owned(),
            steps,
            needs_local: needs_local.names().map(str::to_owned).collect(),
        }
    }

    /// Runs the proof (up to [`MAX_PROOF_LOGINS`] logins, each under the engine's deadline): CPU
    /// work for a blocking thread, not an async worker.
    pub fn prove(&self) -> bool {
        let needs = crate::LocalAccountAuthenticators::from_names(self.needs_local.iter().cloned());
        proves_no_local_account_failure(&self.script, &self.steps, &needs)
    }
}

/// Most answers [`Answers`] keeps; past it the oldest half is forgotten (a tenant has far fewer
/// distinct hand-written scripts than this).
pub const MAX_ANSWERS: usize = 4096;

/// The answers known so far, shared by every reconcile of a process. A caller that must not block
/// (an async reconcile) proves ahead on a blocking thread and records the answer; the pure code
/// that needs it ([`Answers::get_or_prove`]) then finds it instead of running the engine.
#[derive(Debug, Default)]
pub struct Answers {
    known: std::sync::Mutex<Known>,
}

#[derive(Debug, Default)]
struct Known {
    answers: std::collections::HashMap<Question, bool>,
    order: std::collections::VecDeque<Question>,
}

impl Answers {
    /// The process-wide answers.
    pub fn global() -> &'static Answers {
        static GLOBAL: std::sync::OnceLock<Answers> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(Answers::default)
    }

    /// The recorded answer, if any.
    pub fn get(&self, q: &Question) -> Option<bool> {
        self.lock().answers.get(q).copied()
    }

    /// Records `answer` for `q` (a later, real answer replaces a provisional one).
    pub fn record(&self, q: Question, answer: bool) {
        let mut k = self.lock();
        if k.answers.insert(q.clone(), answer).is_none() {
            k.order.push_back(q);
        }
        if k.order.len() > MAX_ANSWERS {
            for _ in 0..MAX_ANSWERS / 2 {
                if let Some(old) = k.order.pop_front() {
                    k.answers.remove(&old);
                }
            }
        }
    }

    /// The recorded answer, or the proof run here and now (the command-line checks, which have no
    /// async workers to keep free).
    pub fn get_or_prove(&self, q: &Question) -> bool {
        if let Some(a) = self.get(q) {
            return a;
        }
        let a = q.prove();
        self.record(q.clone(), a);
        a
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        // A panic while holding the lock leaves a consistent map (every write is one insert or
        // remove), so a poisoned lock is still usable.
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests;
