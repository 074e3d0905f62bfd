//! Every timed job kind, registered once. The app is built here, with their planning, so that
//! recording events re-plans every kind while the kinds themselves record through the app.

use crate::app::App;
use crate::clock::Clock;
use crate::config::Config;
use crate::domain::{Event, Incident};
use crate::jobs::Kind;
use crate::platform::Chat;
use crate::render::Renderer;
use crate::store::{JobChange, JobKind, Store};
use std::sync::Arc;

/// The registry. A new kind is one file beside its feature and one line here.
pub static KINDS: &[&dyn Kind] = &[
    &crate::status::update::StatusUpdate,
    &crate::escalation::jobs::Timeout,
    &crate::escalation::jobs::StuckNudge,
    &crate::jobs::archive::Archive,
    &crate::jobs::labels::Labels,
    &crate::action_items::ActionItems,
    &crate::oncall::job::RoleSync,
];

/// The kind that runs `kind`'s jobs; `None` for an outbox post, which the scheduler delivers.
pub fn of(kind: &JobKind) -> Option<&'static dyn Kind> {
    let tag = kind.tag();
    KINDS.iter().copied().find(|k| k.tag() == tag)
}

/// Every job change that `events`, just folded into `inc`, call for, kind by kind.
pub fn plan(config: &Config, inc: &Incident, events: &[Event]) -> Vec<JobChange> {
    KINDS
        .iter()
        .flat_map(|k| k.plan(config, inc, events))
        .collect()
}

impl App {
    /// An app with no optional integrations; add them with the `with_*` methods. Its
    /// [`App::record`] plans the jobs of every registered kind.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        renderer: Arc<Renderer>,
        chat: Arc<dyn Chat>,
        clock: Arc<dyn Clock>,
    ) -> App {
        App::with_planner(config, store, renderer, chat, clock, plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Post;

    #[test]
    fn every_stored_kind_but_the_outbox_has_one_registered_kind() {
        let kinds = [
            JobKind::StatusUpdate,
            JobKind::EscalationTimeout {
                escalation: 1,
                level: 1,
                policy: None,
            },
            JobKind::StuckNudge,
            JobKind::Archive,
            JobKind::Labels,
            JobKind::keyed(crate::action_items::TAG, "round", serde_json::Value::Null),
            JobKind::keyed(crate::oncall::job::TAG, "web", serde_json::Value::Null),
        ];
        for kind in &kinds {
            let found = KINDS.iter().filter(|k| k.tag() == kind.tag()).count();
            assert_eq!(found, 1, "{}", kind.tag());
        }
        assert_eq!(KINDS.len(), kinds.len());
        let post = JobKind::Post {
            seq: 1,
            channel: 1,
            post: Box::new(Post::text("x")),
            digest: false,
        };
        assert!(of(&post).is_none());
    }
}
