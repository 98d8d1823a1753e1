//! Pricing a request before sending it: the server's input-token count for
//! exactly the request the pipeline would send (same plan: context, model,
//! instructions, settings).

use serde_json::Value;

use super::{Engine, RespondOptions};
use crate::backend::Context;
use crate::error::Result;
use crate::ids::NodeId;

impl Engine {
    /// How many input tokens a child of `parent` with `input` and `options`
    /// would be billed, asked of the server without creating anything
    /// (`POST /responses/input_tokens`). The request is planned as
    /// [`Engine::respond_with`] would plan it — the parent continued on the
    /// server, or its path replayed — so the count includes the inherited
    /// context. If the server no longer knows the parent, the count is asked
    /// again for the replayed path (what the create would then send).
    ///
    /// # Errors
    ///
    /// [`Error::Unsupported`](crate::Error::Unsupported) on a backend that cannot
    /// count (Chat Completions); the plan's errors (an unknown parent) and the
    /// server's.
    pub async fn count_input_tokens(
        &self,
        parent: Option<&NodeId>,
        input: Vec<Value>,
        options: &RespondOptions,
    ) -> Result<u64> {
        let plan = self.plan(parent, input, options).await?;
        let backend = &*self.inner.backend;
        match backend.count_input_tokens(plan.request.clone()).await {
            Err(err) if err.is_previous_response_not_found() => {
                let (Context::Previous(forgotten), Some(parent)) =
                    (&plan.request.context, plan.parent.as_ref())
                else {
                    return Err(err);
                };
                if self.inner.config.missing_parent == super::MissingParent::Error {
                    return Err(err);
                }
                // The create would replay too: remember it, as `send` does.
                if let Ok(mut set) = self.inner.forgotten.lock() {
                    set.insert(forgotten.clone());
                }
                let mut request = plan.request;
                request.context = Context::Replay(self.transcript(parent, &request.model).await?);
                backend.count_input_tokens(request).await
            }
            other => other,
        }
    }
}
