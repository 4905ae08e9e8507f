//! A reverse index identity provider → dependent applications, kept up to date edge by edge.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;

/// Which applications reference which identity providers, both ways. Updating one application costs
/// O(its old edges + its new edges); looking up an IdP's dependents costs O(its dependents). This is
/// what lets a JIT change reach exactly its dependents without scanning every application.
#[derive(Clone, Debug)]
pub struct DependencyIndex<A, I> {
    by_idp: HashMap<I, HashSet<A>>,
    by_app: HashMap<A, HashSet<I>>,
}

impl<A, I> Default for DependencyIndex<A, I> {
    fn default() -> Self {
        Self {
            by_idp: HashMap::new(),
            by_app: HashMap::new(),
        }
    }
}

impl<A, I> DependencyIndex<A, I>
where
    A: Clone + Hash + Eq,
    I: Clone + Hash + Eq,
{
    /// Replaces the identity providers `app` references.
    pub fn set_app(&mut self, app: A, idps: impl IntoIterator<Item = I>) {
        let new: HashSet<I> = idps.into_iter().collect();
        let old = self.by_app.remove(&app).unwrap_or_default();
        for idp in old.difference(&new) {
            if let Some(apps) = self.by_idp.get_mut(idp) {
                apps.remove(&app);
                if apps.is_empty() {
                    self.by_idp.remove(idp);
                }
            }
        }
        for idp in new.difference(&old) {
            self.by_idp
                .entry(idp.clone())
                .or_default()
                .insert(app.clone());
        }
        if !new.is_empty() {
            self.by_app.insert(app, new);
        }
    }

    /// Forgets `app` and its edges.
    pub fn remove_app(&mut self, app: &A) {
        self.set_app(app.clone(), std::iter::empty());
    }

    /// The applications that reference `idp` (in no particular order).
    pub fn dependents(&self, idp: &I) -> impl Iterator<Item = &A> {
        self.by_idp.get(idp).into_iter().flatten()
    }

    /// The identity providers `app` references (in no particular order).
    pub fn identity_providers(&self, app: &A) -> impl Iterator<Item = &I> {
        self.by_app.get(app).into_iter().flatten()
    }

    /// The number of (application, IdP) edges.
    pub fn edges(&self) -> usize {
        self.by_app.values().map(HashSet::len).sum()
    }
}
