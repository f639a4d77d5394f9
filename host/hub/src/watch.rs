//! Who is told about topics created from now on: subscribers asked one by one
//! ([`Subscriber::wants`], [`Hub::watch`](crate::Hub::watch)) and subscribers
//! that gave their patterns ([`Hub::watch_patterns`](crate::Hub::watch_patterns)),
//! indexed: creating a topic then costs one lookup for every exact name watched
//! and one match per wildcard pattern, instead of asking every subscriber about
//! every one of its patterns (1,000 watchlists of 20 names: 20,000 matches per
//! new topic, under the hub's registry lock).

use foldhash::HashMap;
use std::sync::Arc;

use crate::pattern::Pattern;
use crate::slot::{Subscriber, same_subscriber};

/// The address of a subscriber: stable while the index holds it.
fn key(sub: &Arc<dyn Subscriber>) -> usize {
    Arc::as_ptr(sub).cast::<()>() as usize
}

/// The watchers of a hub.
#[derive(Default)]
pub(crate) struct Watchers {
    /// Asked about each new topic.
    asked: Vec<Arc<dyn Subscriber>>,
    /// Exact topic names watched, and by whom.
    exact: HashMap<Box<str>, Vec<Arc<dyn Subscriber>>>,
    /// Wildcard patterns watched, and by whom.
    wild: Vec<(Pattern, Arc<dyn Subscriber>)>,
    /// Each pattern watcher's patterns (to take them out again).
    patterns: HashMap<usize, Vec<Pattern>>,
}

impl Watchers {
    /// Asks `sub` about every new topic (once, however often it is added).
    pub(crate) fn ask(&mut self, sub: Arc<dyn Subscriber>) {
        if !self.asked.iter().any(|w| same_subscriber(w, &sub)) {
            self.asked.push(sub);
        }
    }

    /// Replaces the patterns `sub` watches (none: it watches nothing more).
    pub(crate) fn set_patterns(&mut self, sub: &Arc<dyn Subscriber>, patterns: &[Pattern]) {
        self.forget_patterns(sub);
        if patterns.is_empty() {
            return;
        }
        for p in patterns {
            if p.is_exact() {
                let subs = self.exact.entry(p.as_str().into()).or_default();
                if !subs.iter().any(|s| same_subscriber(s, sub)) {
                    subs.push(sub.clone());
                }
            } else {
                self.wild.push((p.clone(), sub.clone()));
            }
        }
        self.patterns.insert(key(sub), patterns.to_vec());
    }

    fn forget_patterns(&mut self, sub: &Arc<dyn Subscriber>) {
        let Some(old) = self.patterns.remove(&key(sub)) else {
            return;
        };
        for p in old.iter().filter(|p| p.is_exact()) {
            if let Some(subs) = self.exact.get_mut(p.as_str()) {
                subs.retain(|s| !same_subscriber(s, sub));
                if subs.is_empty() {
                    self.exact.remove(p.as_str());
                }
            }
        }
        if old.iter().any(|p| !p.is_exact()) {
            self.wild.retain(|(_, s)| !same_subscriber(s, sub));
        }
    }

    /// Stops telling `sub` about new topics, however it watched.
    pub(crate) fn remove(&mut self, sub: &Arc<dyn Subscriber>) {
        self.asked.retain(|w| !same_subscriber(w, sub));
        self.forget_patterns(sub);
    }

    /// Calls `f` for every watcher that wants the new topic `name` (a watcher
    /// with several matching patterns may come more than once).
    pub(crate) fn wanting(&self, name: &str, mut f: impl FnMut(&Arc<dyn Subscriber>)) {
        for w in &self.asked {
            if w.wants(name) {
                f(w);
            }
        }
        for s in self.exact.get(name).into_iter().flatten() {
            f(s);
        }
        for (p, s) in &self.wild {
            if p.matches(name) {
                f(s);
            }
        }
    }

    /// Whether any watcher wants the new topic `name`.
    pub(crate) fn any_wants(&self, name: &str) -> bool {
        self.exact.contains_key(name)
            || self.wild.iter().any(|(p, _)| p.matches(name))
            || self.asked.iter().any(|w| w.wants(name))
    }

    /// Watchers, of both kinds.
    pub(crate) fn len(&self) -> usize {
        self.asked.len() + self.patterns.len()
    }
}
