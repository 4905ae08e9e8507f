//! Script proofs off the async workers. A hand-written conditional-auth script is proved by running
//! it in an embedded JavaScript engine for every way through its flow (`identity_model::proof`): up
//! to 64 logins of up to 500 ms each, CPU work that would stall every other reconcile sharing the
//! worker thread. A reconcile proves ahead on a blocking thread, within a time budget, and records
//! the answer; the pure translation ([`super::translate::flow_for_rule`]) then finds it.
//!
//! A proof that does not finish within the budget counts as "not proved" for this pass (the script
//! stays `NotVerified`: the conservative answer); the blocking thread goes on to the end, and its
//! real answer replaces the provisional one for the next pass.

use std::time::Duration;

use crate::flow::proof::{Answers, Question};

/// Time a reconcile waits for the proofs it needs, all of them together.
pub const BUDGET: Duration = Duration::from_secs(2);

/// Makes sure every question has an answer in [`Answers::global`] before the pure code asks: the
/// unknown ones are proved on blocking threads, waiting at most `budget` for all of them.
pub async fn prove_ahead(questions: impl IntoIterator<Item = Question>, budget: Duration) {
    prove_ahead_in(Answers::global(), questions, budget).await
}

async fn prove_ahead_in(
    answers: &'static Answers,
    questions: impl IntoIterator<Item = Question>,
    budget: Duration,
) {
    // Each question once, however many objects ask it (the connected apps of a hub IdP often
    // share one script), and in the order asked.
    let mut asked = std::collections::HashSet::new();
    let unknown: Vec<Question> = questions
        .into_iter()
        .filter(|q| answers.get(q).is_none() && asked.insert(q.clone()))
        .collect();
    if unknown.is_empty() {
        return;
    }
    let deadline = tokio::time::Instant::now() + budget;
    for q in unknown {
        let task = tokio::task::spawn_blocking({
            let q = q.clone();
            move || {
                let answer = q.prove();
                answers.record(q, answer);
            }
        });
        if tokio::time::timeout_at(deadline, task).await.is_err() {
            tracing::debug!("a script proof ran past the reconcile's budget; not proved for now");
            // Provisional: the task still running records the real answer when it ends.
            if answers.get(&q).is_none() {
                answers.record(q, false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Step 1: the partner IdP or a password; step 2: TOTP. Two ways through it.
    fn question(script: &str) -> Question {
        Question::new(
            script,
            vec![
                vec![
                    ("Partner".into(), "OpenIDConnectAuthenticator".into()),
                    ("LOCAL".into(), "BasicAuthenticator".into()),
                ],
                vec![("LOCAL".into(), "totp".into())],
            ],
            &Default::default(),
        )
    }

    /// The remedy written by hand: TOTP only for users who signed in with a password.
    const SKIPS_TOTP: &str = "var onLoginRequest = function (context) { executeStep(1, { onSuccess: function (c) { if (c.steps[1].idp === 'LOCAL') { executeStep(2); } } }); };";

    /// The same, after 300 ms of busy work per login: a true answer that takes 600 ms or more.
    const SLOW_SKIPS_TOTP: &str = "var onLoginRequest = function (context) { var t = Date.now(); while (Date.now() - t < 300) {} executeStep(1, { onSuccess: function (c) { if (c.steps[1].idp === 'LOCAL') { executeStep(2); } } }); };";

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn answers_are_proved_ahead_and_a_slow_proof_is_provisionally_not_proved() {
        let answers: &'static Answers = Box::leak(Box::default());
        let fast = question(SKIPS_TOTP);
        let slow = question(SLOW_SKIPS_TOTP);
        // Within the budget: the real answer.
        prove_ahead_in(answers, [fast.clone()], Duration::from_secs(60)).await;
        assert_eq!(answers.get(&fast), Some(true));
        // Past the budget: "not proved" for now, although the proof, when it ends, says proved;
        // had the reconcile waited for the engine, the answer here would already be true.
        prove_ahead_in(answers, [slow.clone()], Duration::from_millis(1)).await;
        assert_eq!(answers.get(&slow), Some(false), "provisional answer");
        // The blocking thread goes on and records the real answer.
        let waited = tokio::time::timeout(Duration::from_secs(60), async {
            while answers.get(&slow) != Some(true) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(
            waited.is_ok(),
            "the real answer replaced the provisional one"
        );
        // A known answer is not proved again: no budget needed.
        prove_ahead_in(answers, [fast.clone()], Duration::ZERO).await;
        assert_eq!(answers.get(&fast), Some(true));
    }
}
