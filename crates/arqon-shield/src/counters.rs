//! Counters keyed by a fixed label (`&'static str`), never by client input, so their cardinality is
//! bounded: the building block of the Shield's labelled metrics.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// A labelled counter with a bounded set of static labels.
#[derive(Debug, Default)]
pub struct LabelledCounter(Mutex<BTreeMap<&'static str, u64>>);

impl LabelledCounter {
    /// Adds one to `label`.
    pub fn inc(&self, label: &'static str) {
        if let Ok(mut counts) = self.0.lock() {
            *counts.entry(label).or_insert(0) += 1;
        }
    }

    /// The count of `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.0
            .lock()
            .map_or(0, |counts| counts.get(label).copied().unwrap_or(0))
    }

    /// The sum over every label.
    pub fn total(&self) -> u64 {
        self.0.lock().map_or(0, |counts| counts.values().sum())
    }

    /// Every label with its count, in label order.
    pub(crate) fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.0
            .lock()
            .map(|counts| counts.iter().map(|(k, v)| (*k, *v)).collect())
            .unwrap_or_default()
    }
}
